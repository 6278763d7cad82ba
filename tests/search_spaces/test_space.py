import random
from pathlib import Path

import optuna
import pytest

from search_spaces import SearchSpace, cost, load_space, preset
from tests.conftest import ROOT

SPACE = str(ROOT / "effnas" / "conf" / "space" / "mnasnet.yaml")


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return load_space(SPACE)


def test_size_and_names(space):
    # 7 stages x (4 ops x 2 kernels x 2 SE x 3 skips x 3 widths x 3 layer deltas) = 432^7
    assert space.size == 432**7
    # stage 1 and 7 have one layer in B0: layer deltas -1 and 0 coincide there
    assert space.num_archs == 432**5 * 288**2
    assert len(space.param_names()) == 42
    assert space.param_names()[:6] == ["s1_op", "s1_kernel", "s1_se", "s1_skip", "s1_width", "s1_layers"]


def test_base_is_a_point(space):
    b0 = preset("efficientnet-b0")
    params = space.params_of(b0)
    assert space.to_arch(params) == b0
    assert params["s2_op"] == "mbconv6" and params["s1_op"] == "ds"
    assert space.decode(space.encode(b0)) == params


def test_base_sampled_when_enqueued(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(space.params_of(space.base))
    arch, _ = space.sample(study.ask())
    assert arch == preset("efficientnet-b0")


def test_sampling_deterministic_for_a_seed(space):
    def draw(seed):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        return [space.sample(study.ask())[0] for _ in range(5)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_vector_round_trip_and_widths(space):
    rng = random.Random(0)
    for _ in range(200):
        params = space.random(rng)
        arch = space.to_arch(params)
        assert space.to_arch(space.params_of(arch)) == arch
        assert space.decode(space.encode(params)) == params
        assert all(s.out_channels % 8 == 0 and s.repeats >= 1 for s in arch.stages)
        assert cost(arch).macs > 0


def test_choice_semantics(space):
    params = space.params_of(space.base)
    params |= {"s4_op": "conv", "s4_width": 1.25, "s4_layers": -1, "s4_skip": "pool", "s4_kernel": 5}
    s = space.to_arch(params).stages[3]
    assert (s.block, s.out_channels, s.repeats, s.skip, s.kernel) == ("conv", 104, 2, "pool", 5)
    params |= {"s1_layers": -1}
    assert space.to_arch(params).stages[0].repeats == 1  # at least one layer


def test_bad_space_and_points(space):
    with pytest.raises(ValueError, match="unknown ConvOp"):
        SearchSpace.from_dict({"choices": {**space.choices, "op": ["conv", "fused"]}})
    with pytest.raises(ValueError, match="missing"):
        SearchSpace.from_dict({"choices": {"op": ["conv"]}})
    with pytest.raises(ValueError, match="not a choice"):
        space.to_arch(space.params_of(space.base) | {"s1_kernel": 7})
    with pytest.raises(ValueError, match="out of range"):
        space.decode([9] * 42)
    with pytest.raises(ValueError, match="not in the space"):
        space.params_of(preset("mnasnet-b1"))


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"choices": {"kernel": [3, 4]}}, "kernel: [4] are not odd integers"),
        ({"choices": {"skip": ["identity", "bogus"]}}, "skip: ['bogus']"),
        ({"choices": {"se": [0.0, 2.0]}}, "se: [2.0]"),
        ({"choices": {"width": [0, 1.0]}}, "width: [0]"),
        ({"choices": {"layers": [0.5]}}, "layers: [0.5]"),
        ({"divisor": 0}, "divisor must be >= 1"),
        ({"min_layers": 0}, "min_layers"),
    ],
)
def test_space_settings_that_cannot_build_are_refused(change, needle):
    import yaml

    from effnas.errors import UserError

    d = yaml.safe_load(Path(SPACE).read_text())
    for k, v in change.items():
        if k == "choices":
            d["choices"] = {**d["choices"], **v}
        else:
            d[k] = v
    with pytest.raises(UserError) as e:
        SearchSpace.from_dict(d)
    assert needle in str(e.value)
