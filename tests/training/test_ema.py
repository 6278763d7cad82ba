"""training/ema.py: the model EMA and its decay warm-up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.ema import ModelEma, ema_decay_at


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
