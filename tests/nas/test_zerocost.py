"""nas/zerocost.py: each score against its definition, computed independently (the conservation law of
synaptic flow, numpy's determinant), and the baselines against the cost model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas.zerocost import SCORES, naswot, score, synflow
from search_spaces import cost, from_block_strings, preset
from training.data import DataConfig, load_data


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(name="digits", resolution=16, limit=200), seed=0)


def test_synflow_of_each_layer_is_the_whole_flow(digits):
    """Tanaka et al.'s conservation law: in a bias-free network of positive-homogeneous layers, with all
    weights made positive and an all-ones input, every layer's synaptic flow sum |w * dR/dw| equals R.
    So three such layers score 3 R, R being the output's sum that this test computes itself."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 20, bias=False), nn.ReLU(),
                        nn.Linear(20, 12, bias=False), nn.ReLU(), nn.Linear(12, 10, bias=False))  # fmt: skip
    got = synflow(net, digits, 1)
    with torch.no_grad():
        r = float(net(torch.ones(1, 3, 16, 16, dtype=torch.float64)).sum())  # weights now positive
    assert got == pytest.approx(3 * r, rel=1e-9)


def test_naswot_is_the_log_determinant_of_the_activation_kernel(digits):
    """Mellor et al.'s kernel: K[i, j] = units where images i and j are both active or both inactive;
    the score is log |det K| (numpy's, here), after every activation of the network."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.SiLU(), nn.Flatten())
    x = (digits.train.x[:16].float() / 255 - torch.tensor(digits.mean).view(1, 3, 1, 1)) / torch.tensor(
        digits.std).view(1, 3, 1, 1)  # fmt: skip
    with torch.no_grad():
        a1 = net[1](net[0](x))
        a2 = net[3](net[2](a1))
    codes = np.concatenate([(a1 > 0).flatten(1).numpy(), (a2 > 0).flatten(1).numpy()], 1).astype(float)
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert naswot(net, digits, 16) == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)


def test_scores_of_a_searched_network_are_seeded_and_the_baselines_are_its_cost(digits):
    arch = preset("mnasnet-a1")
    for name in SCORES:
        a, _ = score(name, arch, digits, seed=1)
        assert a == score(name, arch, digits, seed=1)[0] and np.isfinite(a), name
    c = cost(arch, 224, 1000)
    assert score("params", arch, digits)[0] == c.params and score("macs", arch, digits)[0] == c.macs
    assert score("synflow", arch, digits, seed=1)[0] != score("synflow", arch, digits, seed=2)[0]  # the init


def test_grad_norm_with_a_zero_classifier_is_its_hand_computed_gradient(digits):
    """With the classifier at zero the logits are 0 and no gradient reaches the layers below, so the score
    is the classifier's gradient alone: (softmax(0) - onehot(y))^T h / B, h the classifier's input."""
    from nas.zerocost import grad_norm
    from search_spaces import build

    torch.manual_seed(0)
    net = build(from_block_strings(["r1_k3_s11_e1_i16_o16", "r1_k3_s22_e4_i16_o24"], stem=16, head=64), 10)
    nn.init.zeros_(net.classifier.weight)
    nn.init.zeros_(net.classifier.bias)
    seen = []
    net.classifier.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    got = grad_norm(net, digits, 32)
    h, y = seen[0], digits.train.y[:32]
    want = (torch.full((32, 10), 0.1) - nn.functional.one_hot(y, 10).float()).T @ h / 32
    assert got == pytest.approx(float(want.norm()), rel=1e-5)
