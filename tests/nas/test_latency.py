"""Latency lookup tables (search_spaces/latency.py, nas/latency.py) and the reward on latency, on a tiny space
whose table builds in seconds."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from effnas.errors import UserError
from nas.latency import covering_plan, error_stats, fit_affine, load_space_option, validation_report
from nas.latency_timer import median_ci
from nas.reward import reward
from search_spaces import SearchSpace, from_block_strings
from search_spaces.latency import FORMAT, LatencyTable, arch_parts, parse_time, read_table, space_parts
from tests.conftest import in_process

TINY_BASE = ["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24"]
CHOICES = {"op": ["ds", "mbconv6"], "kernel": [3, 5], "se": [0.0, 0.25], "skip": ["identity", "none"],
           "width": [1.0, 1.5], "layers": [0, 1]}  # fmt: skip
RES, CLASSES = 32, 10
"""The tiny space's table is built at 32 px for 10 classes (what the search's reward counts at)."""
TABLE_ARGS = [f"resolution={RES}", f"num_classes={CLASSES}", "min_repeats=3", "max_repeats=5", "warmup=1"]
SPACE = [
    f"space.base=[{','.join(TINY_BASE)}]",
    *(f"space.choices.{k}=[{','.join(map(str, v))}]" for k, v in CHOICES.items()),
]
SEARCH = ["search", "train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0", "recheck=0", *SPACE,
          "reward.metric=latency", f"reward.resolution={RES}", f"reward.num_classes={CLASSES}"]  # fmt: skip


def tiny_space() -> SearchSpace:
    return SearchSpace.from_dict({"name": "tiny", "base": TINY_BASE, "choices": CHOICES})


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory) -> Path:
    """The tiny space's table, built by the command (in-network timing)."""
    tmp = tmp_path_factory.mktemp("latency")
    (tmp / "tiny.yaml").write_text(yaml.safe_dump({"name": "tiny", "base": TINY_BASE, "choices": CHOICES}))
    code, out, err = in_process("nas", "latency", "build-table", f"space={tmp / 'tiny.yaml'}",
                                f"out={tmp / 'tiny.json'}", *TABLE_ARGS)  # fmt: skip
    assert code == 0, err
    assert "table: " in out
    return tmp / "tiny.json"


def test_space_parts_are_exactly_the_parts_of_its_points():
    space = tiny_space()
    parts = space_parts(space, RES, CLASSES)
    seen: set[str] = set()
    for vector in itertools.product(*(range(c) for c in space.cardinalities())):
        seen |= {p.key for p in arch_parts(space.to_arch(space.decode(list(vector))), RES, CLASSES)}
    assert seen == set(parts)  # every part of every point, and nothing a point cannot have


def test_default_space_parts_cover_random_points():
    space = load_space_option("mnasnet")
    parts = space_parts(space, 224, 1000)
    rng = random.Random(0)
    for _ in range(200):
        arch = space.to_arch(space.random(rng))
        assert all(p.key in parts for p in arch_parts(arch, 224, 1000))


def test_keys_of_a_known_arch_and_the_hand_sum():
    arch = from_block_strings(["r1_k3_s11_e1_i16_o16_se0.25", "r2_k5_s22_e6_i16_o24"])
    keys = [p.key for p in arch_parts(arch, 32, 10)]
    assert keys == [
        "stem-input:32x32x3-output:16x16x16-act:silu",  # block strings: the stem is the first block's input
        "ds-input:16x16x16-output:16x16x16-mid:16-kernel:3-stride:1-se:4-skip:identity-act:silu",
        "mbconv-input:16x16x16-output:8x8x24-mid:96-kernel:5-stride:2-se:0-skip:none-act:silu",
        "mbconv-input:8x8x24-output:8x8x24-mid:144-kernel:5-stride:1-se:0-skip:identity-act:silu",
        "head-input:8x8x24-features:1280-classes:10-act:silu",
    ]
    ms = [0.25, 1.5, 2.0, 0.75, 0.125]
    table = LatencyTable({"resolution": 32, "num_classes": 10}, {k: {"ms": m} for k, m in zip(keys, ms)})
    assert table.table_sum(arch) == 0.25 + 1.5 + 2.0 + 0.75 + 0.125
    table.correction = {"kind": "affine", "a": 1.0, "b": 2.0}
    assert table.predict(arch) == 1.0 + 2.0 * 4.625
    del table.entries[keys[3]]
    with pytest.raises(UserError, match=r"no entry for block 3 \(stage 2\): mbconv-input:8x8x24"):
        table.predict(arch)


def test_covering_plan_times_every_part_in_enough_networks():
    for space, res, classes in ((tiny_space(), RES, CLASSES), (load_space_option("mnasnet"), 224, 1000)):
        parts = space_parts(space, res, classes)
        for contexts in (1, 2):
            plan = covering_plan(space, res, classes, contexts)
            seen: dict[str, int] = {}
            for params in plan:
                for p in arch_parts(space.to_arch(params), res, classes):
                    seen[p.key] = seen.get(p.key, 0) + 1
            assert set(seen) == set(parts) and min(seen.values()) >= contexts
    # the default space's stages have at most 288 first-block options: a plan needs at least that many
    assert 288 <= len(covering_plan(load_space_option("mnasnet"), 224, 1000, 1)) <= 320


def test_parse_time():
    assert parse_time("25ms") == 25.0 and parse_time("800us") == 0.8 and parse_time("0.02 s") == 20.0
    for bad, message in (("25", "no time unit"), (25, "no time unit"), ("-5ms", "> 0"), ("fast ms", "not a time")):
        with pytest.raises(UserError, match=message):
            parse_time(bad)


def test_validation_statistics_on_fixed_inputs():
    measured = np.array([10.0, 20.0, 40.0, 80.0])
    predicted = np.array([10.4, 18.0, 44.0, 80.0])  # +4%, -10%, +10%, 0%
    s = error_stats(measured, predicted)
    assert s["within_5"] == 0.5 and s["within_10"] == 1.0
    assert s["rmse_ms"] == pytest.approx(np.sqrt((0.4**2 + 2**2 + 4**2) / 4))
    assert s["mape"] == pytest.approx((0.04 + 0.1 + 0.1) / 4)
    sums = np.array([1.0, 2.0, 5.0, 7.0, 11.0, 13.0])
    assert fit_affine(sums, 3.0 + 0.5 * sums) == pytest.approx((3.0, 0.5))
    df = pd.DataFrame({"measured_ms": 3.0 + 0.5 * sums, "table_sum_ms": sums})
    rows, (a, b) = validation_report(df)
    assert [r["models"] for r in rows] == ["all", "held-out half", "held-out half"]
    assert rows[2]["within_5"] == 1.0 and rows[2]["rmse_ms"] == pytest.approx(0.0, abs=1e-9)
    assert (a, b) == pytest.approx((3.0, 0.5))


def test_median_interval_is_order_statistics():
    assert median_ci([5.0] * 30) == 0.0
    x = list(range(1, 101))  # n = 100: ranks 50 -+ 9.8 -> the 40th and 60th values
    assert median_ci([float(v) for v in x]) == pytest.approx((60 - 40) / 2 / 50.5)


def test_built_table(tiny_table: Path):
    table = read_table(tiny_table)
    h = table.header
    assert h["complete"] and h["backend"] == "torch" and h["batch"] == 1 and h["threads"] == 1
    assert h["resolution"] == RES and h["num_classes"] == CLASSES and h["settings"]["method"] == "in-network"
    assert h["device"].startswith("cpu: ") and h["versions"]["torch"]
    assert set(table.entries) == set(space_parts(tiny_space(), RES, CLASSES))
    for e in table.entries.values():  # each entry: the median of its observations, one per place in a network
        assert len(e["obs"]) >= h["settings"]["contexts"] and e["ms"] == pytest.approx(
            float(np.median(e["obs"])), abs=1e-6
        )
    # rerunning the finished build times nothing again
    code, out, err = in_process("nas", "latency", "build-table", f"space={tiny_table.parent / 'tiny.yaml'}",
                                f"out={tiny_table}", *TABLE_ARGS)  # fmt: skip
    assert code == 0, err
    assert read_table(tiny_table).entries == table.entries
    assert f"{h['networks_done']} already timed" in out


def test_isolated_build_resumes(tmp_path: Path, tiny_table: Path):
    args = [f"space={tiny_table.parent / 'tiny.yaml'}", f"out={tmp_path / 't.json'}", "method=isolated", *TABLE_ARGS]
    assert in_process("nas", "latency", "build-table", *args)[0] == 0
    d = json.loads((tmp_path / "t.json").read_text())
    assert d["format"] == FORMAT and d["header"]["settings"]["method"] == "isolated"
    kept = dict(list(d["entries"].items())[3:])
    d["entries"], d["header"]["complete"] = kept, False  # as a build killed after 3 parts... of the end
    (tmp_path / "t.json").write_text(json.dumps(d))
    code, out, _ = in_process("nas", "latency", "build-table", *args)
    assert code == 0 and f"{len(kept)} already timed" in out
    again = read_table(tmp_path / "t.json")
    assert again.complete and len(again.entries) == len(kept) + 3
    assert all(again.entries[k] == v for k, v in kept.items())
    # the dry run says how much there is to time and writes nothing
    code, out, _ = in_process("nas", "latency", "build-table", *args[:1], f"out={tmp_path / 'dry.json'}",
                              *TABLE_ARGS, "--dry-run")  # fmt: skip
    assert code == 0 and "networks to time, about" in out and not (tmp_path / "dry.json").exists()


def test_validate_and_fit(tmp_path: Path, tiny_table: Path):
    table = tmp_path / "t.json"
    table.write_bytes(tiny_table.read_bytes())
    before = read_table(table).sha256
    code, out, err = in_process("nas", "latency", "validate", f"table={table}", "n=8", f"out={tmp_path / 'v.csv'}",
                                "--fit")  # fmt: skip
    assert code == 0, err
    df = pd.read_csv(tmp_path / "v.csv")
    assert len(df) == 8 and bool(df["base"].iloc[0]) and (df["measured_ms"] > 0).all()
    space = tiny_space()
    t = read_table(table)
    for blocks, s in zip(df["blocks"], df["table_sum_ms"]):
        assert s == pytest.approx(t.table_sum(from_block_strings(blocks.split())))
    assert "held-out half" in out and "within_10" in out and "measurement noise: every pass within" in out
    passes = df[["round1_ms", "round2_ms", "round3_ms"]].to_numpy()  # 3 passes; a model's number: their median
    assert df["measured_ms"].to_numpy() == pytest.approx(np.median(passes, axis=1))
    c = t.correction
    assert c is not None and t.sha256 != before
    a, b = fit_affine(df["table_sum_ms"].to_numpy(), df["measured_ms"].to_numpy())
    assert (c["a"], c["b"]) == pytest.approx((a, b))
    assert t.predict(space.base) == pytest.approx(a + b * t.table_sum(space.base))


def test_search_on_latency(tmp_path: Path, tiny_table: Path):
    """The reward's cost is the table's prediction; the run records the table's hash and refuses another."""
    table = tmp_path / "t.json"
    table.write_bytes(tiny_table.read_bytes())
    t = read_table(table)
    T = t.predict(tiny_space().base) * 1.1
    run = tmp_path / "run"
    args = [*SEARCH, f"reward.T={T:.6f}ms", f"reward.table={table}", "reward.beta=-0.5", f"run={run}"]
    code, out, err = in_process("nas", *args, "trials=3")
    assert code == 0, err
    df = pd.read_parquet(run / "trials.parquet")
    done = df[df["state"] == "COMPLETE"]
    assert len(done) == 3
    T_ms = float(f"{T:.6f}")
    for _, row in done.iterrows():
        arch = from_block_strings(row["block_strings"].split())
        assert row["latency_ms"] == pytest.approx(t.predict(arch))
        assert row["reward"] == pytest.approx(reward(row["accuracy"], row["latency_ms"], T_ms, -0.07, -0.5))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["reward"]["table_sha256"] == t.sha256
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run / "study.journal")))
    attrs = optuna.load_study(study_name=None, storage=storage).user_attrs["reward"]
    assert attrs["metric"] == "latency" and attrs["table_sha256"] == t.sha256
    code, out, _ = in_process("nas", "show", str(run))
    assert code == 0 and f"T = {T_ms:g} ms" in out and "latency_ms" in out
    code, out, err = in_process("nas", "plot", str(run), "--out", str(tmp_path / "plots"))
    assert code == 0, err
    assert (tmp_path / "plots" / "accuracy_vs_latency.png").is_file()
    # another table (here: the same with a fitted correction) is refused, and nothing of the run is lost
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    d = json.loads(table.read_text())
    d["correction"] = {"kind": "affine", "a": 0.0, "b": 1.0}
    table.write_text(json.dumps(d))
    code, _, err = in_process("nas", *args, "trials=4")
    assert code == 2 and err.splitlines()[-1].startswith("error: reward.table") and "not the table" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"} == before


@pytest.mark.parametrize("backend", ["torchscript", "onnxruntime"])
def test_compiled_backends_time_parts_alone(backend: str, tmp_path: Path, tiny_table: Path):
    """A compiled graph has no boundaries between parts: these backends time each part alone, and say so."""
    out = tmp_path / "t.json"
    args = [f"space={tiny_table.parent / 'tiny.yaml'}", f"out={out}", f"backend={backend}", *TABLE_ARGS]
    code, _, err = in_process("nas", "latency", "build-table", *args)
    assert code == 0, err
    t = read_table(out)
    assert t.complete and t.header["backend"] == backend and t.header["settings"]["method"] == "isolated"
    assert set(t.entries) == set(space_parts(tiny_space(), RES, CLASSES)) and all(
        e["ms"] > 0 for e in t.entries.values()
    )
    if backend == "onnxruntime":
        assert t.header["versions"]["onnxruntime"]
    code, out_text, err = in_process("nas", "latency", "validate", f"table={out}", "n=4", "rounds=1")
    assert code == 0 and "held-out half" in out_text, err
    code, _, err = in_process("nas", "latency", "build-table", *args, "method=in-network")
    assert code == 2 and "use method=isolated" in err
