import random

import pytest

from search_spaces import Arch, Stage, load_arch, preset, preset_names
from tests.conftest import random_arch


@pytest.mark.parametrize("name", preset_names())
def test_yaml_and_json_round_trip_presets(name):
    a = preset(name)
    assert Arch.from_yaml(a.to_yaml()) == a
    assert Arch.from_json(a.to_json()) == a
    assert Arch.from_yaml(a.to_yaml()).name == a.name


def test_round_trip_random():
    rng = random.Random(1)
    for _ in range(100):
        a = random_arch(rng)
        assert Arch.from_yaml(a.to_yaml()) == a
        assert Arch.from_json(a.to_json()) == a


def test_frozen():
    a = preset("efficientnet-b0")
    with pytest.raises(AttributeError):
        a.stem = 16  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"repeats": 0}, "repeats"),
        ({"kernel": 4}, "kernel"),
        ({"se_ratio": 1.5}, "SE ratio"),
        ({"block": "fused"}, "block type"),
        ({"skip": "dense"}, "skip"),
        ({"block": "ds", "expand": 6.0}, "expand"),
    ],
)
def test_stage_validation(kwargs, needle):
    base = dict(block="mbconv", repeats=1, kernel=3, stride=1, expand=6.0, out_channels=16)
    with pytest.raises(ValueError, match=needle):
        Stage(**{**base, **kwargs})


def test_from_dict_rejects_unknown_keys():
    d = preset("efficientnet-b0").to_dict()
    d["widht"] = 1.0
    with pytest.raises(ValueError, match="widht"):
        Arch.from_dict(d)
    d = preset("efficientnet-b0").to_dict()
    d["stages"][0]["kernal"] = 3
    with pytest.raises(ValueError, match="kernal"):
        Arch.from_dict(d)


def test_load_arch_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_arch(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_arch(str(bad))
    good = tmp_path / "b0.yaml"
    good.write_text(preset("efficientnet-b0").to_yaml())
    assert load_arch(str(good)) == preset("efficientnet-b0")


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        preset("resnet50")
