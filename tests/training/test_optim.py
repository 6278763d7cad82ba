"""training/optim.py: the learning-rate schedules and TF RMSprop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tests.training.helpers import EFFNET
from training.optim import RMSpropTF, lr_schedule, warmup_cosine
from training.recipe import Recipe


# ---- learning-rate schedule ------------------------------------------------------
def test_exponential_schedule_matches_formula():
    spe = 100
    r = Recipe.from_mapping({**EFFNET, "batch_size": 256})
    lr = lr_schedule(r, steps_per_epoch=spe, batch_size=256)
    peak = 0.256 * 256 / 4096
    warm = 5 * spe
    for step in (0, 1, 250, 499):  # TF warm-up: peak * step / warmup_steps
        assert lr(step) == pytest.approx(peak * step / warm, rel=1e-12)
    decay_steps = 2.4 * spe
    for step in (500, 719, 720, 959, 960, 10_000, 34_999):  # staircase: 0.97 ** floor(step / 240)
        assert lr(step) == pytest.approx(peak * 0.97 ** math.floor(step / decay_steps), rel=1e-12)
    assert lr(719) == lr(500) and lr(720) == pytest.approx(lr(719) * 0.97)
    smooth = lr_schedule(Recipe.from_mapping({**EFFNET, "staircase": False}), spe, 256)
    for step in (500, 719, 777, 10_000):
        assert smooth(step) == pytest.approx(peak * 0.97 ** (step / decay_steps), rel=1e-12)
    assert lr_schedule(r, spe, 4096)(warm) == pytest.approx(0.256 * 0.97**2)  # linear scaling with batch


def test_cosine_schedule_unchanged():
    r = Recipe(lr=0.1, epochs=4, warmup_epochs=0.5)
    lr, f = lr_schedule(r, 10, 32), warmup_cosine(40, 5)
    assert [lr(s) for s in range(40)] == [0.1 * f(s) for s in range(40)]


# ---- TF RMSprop ------------------------------------------------------------------
def _hand_rmsprop_tf(w, grads, lrs, rho=0.9, mom=0.9, eps=1e-3, wd=0.0):
    ms, buf = [1.0] * len(w), [0.0] * len(w)  # TF: the "rms" slot starts at ones
    for g, lr in zip(grads, lrs):
        for i in range(len(w)):
            gi = g[i] + wd * w[i]
            ms[i] = rho * ms[i] + (1 - rho) * gi * gi
            buf[i] = mom * buf[i] + lr * gi / math.sqrt(ms[i] + eps)
            w[i] -= buf[i]
    return w


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_rmsprop_tf_step_by_hand(wd):
    w0, grads, lrs = [1.0, -2.0, 0.5], [[0.3, -4.0, 1e-3], [0.1, 2.0, -1e-3], [-0.2, 0.5, 0.0]], [0.1, 0.05, 0.2]
    p = nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = RMSpropTF([p], lr=0.0, decay=0.9, momentum=0.9, eps=1e-3, weight_decay=wd)
    for g, lr in zip(grads, lrs):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.param_groups[0]["lr"] = lr
        opt.step()
    assert p.detach().tolist() == pytest.approx(_hand_rmsprop_tf(list(w0), grads, lrs, wd=wd), rel=1e-12, abs=1e-15)
    # first step by hand: ms = 0.9 + 0.1 * 0.09 = 0.909; w = 1 - 0.1 * 0.3 / sqrt(0.909 + 0.001)
    q = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    q.grad = torch.tensor([0.3], dtype=torch.float64)
    RMSpropTF([q], lr=0.1).step()
    assert q.item() == pytest.approx(1 - 0.1 * 0.3 / math.sqrt(0.910), rel=1e-12)


def test_rmsprop_tf_differs_from_torch_and_matches_timm():
    torch.manual_seed(0)
    w0 = torch.randn(50, dtype=torch.float64)
    grads = [torch.randn(50, dtype=torch.float64) * 0.01 for _ in range(5)]
    lrs = [0.01, 0.02, 0.03, 0.02, 0.01]

    def run(make):
        p = nn.Parameter(w0.clone())
        opt = make([p])
        for g, lr in zip(grads, lrs):
            p.grad = g.clone()
            opt.param_groups[0]["lr"] = lr
            opt.step()
        return p.detach()

    ours = run(lambda ps: RMSpropTF(ps, lr=0.0, weight_decay=1e-5))
    theirs = run(lambda ps: torch.optim.RMSprop(ps, lr=0.0, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-5))
    assert (ours - theirs).abs().max() > 1e-3  # eps outside the root, ms from zero, lr out of the buffer
    timm_rms = pytest.importorskip("timm.optim").RMSpropTF
    ref = run(lambda ps: timm_rms(ps, lr=0.0, alpha=0.9, eps=1e-3, momentum=0.9, weight_decay=1e-5))
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
