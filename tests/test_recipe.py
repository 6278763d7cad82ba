"""The EfficientNet training recipe: schedule, TF RMSprop, EMA, stochastic depth, dropout,
augmentation and evaluation transforms, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nas.augment import TrainLoader, center_crop_resize, random_resized_crop
from nas.data import Data, Split
from nas.ema import ModelEma, ema_decay_at
from nas.optim import RMSpropTF, lr_schedule, warmup_cosine
from nas.recipe import Recipe
from nas.train import recipe_arch, train_eval
from search_spaces import build, from_block_strings, preset
from search_spaces.plan import block_specs
from search_spaces.presets import EFFICIENTNET_OFFICIAL
from tests.conftest import PYTHON, ROOT

EFFNET = {
    "optimizer": "rmsprop_tf", "lr": 0.256, "lr_batch": 4096, "weight_decay": 1e-5, "schedule": "exponential",
    "warmup_epochs": 5, "ema_decay": 0.9999, "drop_path": 0.2, "bn_momentum": None, "augment": "autoaugment",
    "crop": "auto", "image_size": "auto",
}  # fmt: skip


def nas(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([PYTHON, "-m", "nas.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


# ---- config ------------------------------------------------------------------
def test_yaml_recipes():
    from nas.cli import compose

    assert Recipe.from_mapping(compose("mobile400m", [])["train"]) == Recipe()  # proxy.yaml == the defaults
    r = Recipe.from_mapping(compose("train", ["train=efficientnet"])["train"])
    assert (r.optimizer, r.rmsprop_decay, r.momentum, r.rmsprop_eps) == ("rmsprop_tf", 0.9, 0.9, 1e-3)
    assert r.weight_decay == 1e-5
    assert (r.lr, r.lr_batch, r.schedule, r.lr_decay_rate, r.lr_decay_epochs, r.staircase) == (
        0.256, 4096, "exponential", 0.97, 2.4, True)  # fmt: skip
    assert (r.label_smoothing, r.drop_path, r.dropout, r.bn_momentum, r.ema_decay) == (0.1, 0.2, None, None, 0.9999)
    assert r.augment == "autoaugment" and r.autoaugment_policy == "imagenet"
    assert r.peak_lr(4096) == pytest.approx(0.256) and r.peak_lr(256) == pytest.approx(0.016)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"augment": "mixup"}, "augmentation policy"),
        ({"autoaugment_policy": "coco"}, "AutoAugment policy"),
        ({"rmsprop_decay": -0.1}, "rmsprop_decay"),
        ({"rmsprop_eps": -1e-3}, "epsilon"),
        ({"rmsprop_eps": 0}, "epsilon"),
        ({"ema_decay": -0.5}, "ema_decay"),
        ({"lr_decay_rate": -0.97}, "lr_decay_rate"),
        ({"schedule": "step"}, "schedule"),
        ({"image_size": "huge"}, "image_size"),
        ({"lr": "fast"}, "number"),
        ({"nope": 1}, "unknown train keys"),
    ],
)
def test_bad_recipe(change, needle):
    with pytest.raises(ValueError, match=needle):
        Recipe.from_mapping({**EFFNET, **change})


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


# ---- EMA ---------------------------------------------------------------------------
def test_ema_update():
    assert ema_decay_at(0.9999, 1) == pytest.approx(2 / 11)
    assert ema_decay_at(0.9999, 1000) == pytest.approx(1001 / 1010)
    assert ema_decay_at(0.9999, 10**6) == 0.9999 and ema_decay_at(0.9999, 1, warmup=False) == 0.9999
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ModelEma(model, 0.9999)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves BN running stats and num_batches_tracked
    now = {k: v.clone() for k, v in model.state_dict().items()}
    ema.update()
    d = 2 / 11
    for k, v in ema.module.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, d * before[k] + (1 - d) * now[k])
        else:
            assert torch.equal(v, now[k])  # num_batches_tracked is copied
    assert ema.updates == 1 and not any(p.requires_grad for p in ema.module.parameters())
    ema.update()  # a second update with the weights unchanged moves the average towards them
    d2 = 3 / 12
    w = "0.weight"
    torch.testing.assert_close(ema.module.state_dict()[w], d2 * (d * before[w] + (1 - d) * now[w]) + (1 - d2) * now[w])


# ---- stochastic depth and dropout ------------------------------------------------------
def test_survival_probabilities_per_block():
    b0 = preset("efficientnet-b0")
    rates = [s.drop_path for s in block_specs(b0)]
    assert len(rates) == 16
    # TF official (drop_connect_rate * idx / len(blocks)), timm and torchvision all use index / count,
    # 0-based: the first block keeps every sample, the last drops 0.2 * 15/16 = 0.1875, not 0.2.
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert 1 - rates[-1] == pytest.approx(0.8125)
    net = build(b0, num_classes=10)
    assert [blk.spec.drop_path for stage in net.blocks for blk in stage] == pytest.approx(rates)
    # the recipe's drop_path applies to any Arch (MnasNet presets have none)
    a1 = recipe_arch(preset("mnasnet-a1"), Recipe.from_mapping(EFFNET))
    n = a1.num_blocks
    assert [s.drop_path for s in block_specs(a1)] == pytest.approx([0.2 * i / n for i in range(n)])


@pytest.mark.parametrize("variant", [f"b{i}" for i in range(8)])
def test_dropout_per_variant(variant):
    arch = recipe_arch(preset(f"efficientnet-{variant}"), Recipe.from_mapping(EFFNET))
    expected = EFFICIENTNET_OFFICIAL[variant][3]
    assert arch.dropout == expected == {"b0": 0.2, "b1": 0.2, "b2": 0.3, "b3": 0.3, "b4": 0.4, "b5": 0.4, "b6": 0.5,
                                        "b7": 0.5}[variant]  # fmt: skip
    assert arch.bn_momentum == 0.01 and arch.drop_path == 0.2
    assert recipe_arch(arch, Recipe.from_mapping({**EFFNET, "dropout": 0.35})).dropout == 0.35


TIMM_CROP_PCT = {"b0": 0.875, "b1": 0.882, "b2": 0.890, "b3": 0.904, "b4": 0.922, "b5": 0.934, "b6": 0.942, "b7": 0.949}


@pytest.mark.parametrize("variant, crop_pct", sorted(TIMM_CROP_PCT.items()))
def test_eval_resolution_and_crop_per_variant(variant, crop_pct):
    arch = preset(f"efficientnet-{variant}")
    r = Recipe.from_mapping(EFFNET)
    size = r.train_size("imagefolder", 256, arch.resolution)  # ImageNet-style data: rrc at the variant's size
    assert size == EFFICIENTNET_OFFICIAL[variant][2]
    frac = r.eval_crop_fraction("imagefolder", size)
    assert frac == size / (size + 32) and frac == pytest.approx(crop_pct, abs=1e-3)  # timm's crop_pct
    assert r.train_size("npz", 32, arch.resolution) == 32 and r.eval_crop_fraction("npz", 32) == 1.0


# ---- augmentation -------------------------------------------------------------------
def _data(n: int = 64, res: int = 16, classes: int = 4) -> Data:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % classes
    split = Split(x, y)
    return Data("npz", split, Split(x[:16], y[:16]), classes, (0.5,) * 3, (0.25,) * 3, res, True, 2)


def test_random_resized_crop_and_centre_crop():
    x = torch.rand(2, 3, 8, 8)
    same = random_resized_crop(x, 8, min_area=1.0, ratio=(1.0, 1.0))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)  # the whole image, unchanged
    flipped = random_resized_crop(x, 8, min_area=1.0, ratio=(1.0, 1.0), flip=torch.tensor([True, False]))
    torch.testing.assert_close(flipped[0], x[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(flipped[1], x[1], atol=1e-5, rtol=0)
    assert random_resized_crop(x, 5).shape == (2, 3, 5, 5)
    assert torch.equal(center_crop_resize(x, 0.5, 4), x[..., 2:6, 2:6])
    assert center_crop_resize(x, 0.875, 8).shape == (2, 3, 8, 8)


@pytest.mark.parametrize("augment", ["autoaugment", "randaugment"])
@pytest.mark.parametrize("crop, size", [("pad", 16), ("rrc", 12)])
def test_train_loader_policies(augment, crop, size):
    data = _data()
    r = Recipe.from_mapping({**EFFNET, "augment": augment, "crop": crop, "image_size": size, "batch_size": 16,
                             "augment_chunk": 4})  # fmt: skip
    torch.manual_seed(0)
    batches = list(TrainLoader(data, data.train, r, size, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 4 and all(x.shape == (16, 3, size, size) and x.dtype == torch.float32 for x, _ in batches)
    x0 = batches[0][0] * 0.25 * 255 + 0.5 * 255  # un-normalise: still whole numbers (the policy ran on uint8)
    torch.testing.assert_close(x0, x0.round(), atol=1e-3, rtol=0)


# ---- the trainer ---------------------------------------------------------------------
def _tiny_arch():
    return from_block_strings(["r1_k3_s11_e1_i8_o8_se0.25", "r2_k3_s22_e3_i8_o16_se0.25"], stem=8, head=32, name="tiny")


def test_train_eval_efficientnet_recipe_in_process(tmp_path: Path):
    data = _data()
    r = Recipe.from_mapping({**EFFNET, "epochs": 2, "batch_size": 16, "warmup_epochs": 1, "augment_chunk": 8})
    keep: dict = {}
    res = train_eval(_tiny_arch(), data, r, torch.device("cpu"), keep=keep, checkpoint=tmp_path / "ck.pt")
    lr = lr_schedule(r, steps_per_epoch=4, batch_size=16)
    assert res.steps == 8 and res.epochs == 2 and res.lr == pytest.approx(lr(7))
    assert len(res.history) == len(res.history_top5) == len(res.history_raw) == 2
    assert keep["model"] is not keep["train_model"]  # the EMA copy is the inference model
    assert 0 <= res.accuracy <= res.top5 <= 1 and res.accuracy_raw is not None
    assert res.eval_seconds > 0 and res.train_seconds + res.eval_seconds <= res.seconds
    again = train_eval(_tiny_arch(), data, r, torch.device("cpu"), checkpoint=tmp_path / "ck.pt")
    assert again.resumed_epoch == 2 and again.history == res.history and again.steps == 8
    assert again.seconds >= res.train_seconds and again.train_seconds == res.train_seconds
    assert again.eval_seconds == res.eval_seconds  # summed over calls
    with pytest.raises(ValueError, match="another architecture"):
        train_eval(preset("mnasnet-a1"), data, r, torch.device("cpu"), checkpoint=tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="another recipe"):
        train_eval(_tiny_arch(), data, Recipe.from_mapping({**EFFNET, "epochs": 2, "batch_size": 8}),
                   torch.device("cpu"), checkpoint=tmp_path / "ck.pt")  # fmt: skip


# ---- the command: resume after SIGKILL, bad input -----------------------------------------
EPOCHS = 6
RESUME = ["train=efficientnet", f"train.epochs={EPOCHS}", "train.batch_size=32", "train.warmup_epochs=1",
          "train.augment_chunk=8", "data.limit=400", "data.resolution=16", "verbose=0"]  # fmt: skip


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path):
    arch = tmp_path / "tiny.yaml"
    arch.write_text(_tiny_arch().to_yaml())
    full = tmp_path / "full"
    p = nas("train", str(arch), *RESUME, f"run={full}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "warning: BN momentum 0.01" in p.stderr  # 60 steps at TF's 0.99: statistics cannot settle
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [PYTHON, "-m", "nas.cli", "train", str(arch), *RESUME, f"run={killed}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (killed / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert 1 <= state["result"]["epochs"] < EPOCHS, "killed too late to test a resume"
    assert not (killed / "metrics.json").exists()
    p = nas("train", str(arch), *RESUME, f"run={killed}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (full, killed))
    assert b["resumed_after_epoch"] == state["result"]["epochs"] and a["resumed_after_epoch"] is None
    for key in ("epochs", "steps", "final_lr", "val_history", "val_accuracy", "val_top5", "val_accuracy_without_ema"):
        assert a[key] == b[key], key
    wa, wb = (torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (full, killed))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=k)


def test_bad_input_one_line(tmp_path: Path):
    arch = tmp_path / "tiny.yaml"
    arch.write_text(_tiny_arch().to_yaml())
    base = [str(arch), "train=efficientnet", "train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0"]
    for extra, needle in [
        (["train.augment=cutmix"], "augmentation policy"),
        (["train.rmsprop_decay=-0.9"], "rmsprop_decay"),
        (["train.rmsprop_eps=-1e-3"], "epsilon"),
    ]:
        assert needle in one_line_error(nas("train", *base, *extra, f"run={tmp_path / 'bad'}", cwd=tmp_path))
        assert not (tmp_path / "bad").exists()
    run = tmp_path / "r"
    assert nas("train", *base, f"run={run}", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    err = one_line_error(nas("train", "mnasnet-a1", *base[1:], f"run={run}", cwd=tmp_path))
    assert "another architecture" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
