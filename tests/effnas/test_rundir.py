"""effnas/rundir.py: the run-directory contract every command uses (in process, no training)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from effnas import rundir
from effnas.errors import UserError


def test_open_run_creates_marks_and_resumes(tmp_path: Path):
    run = tmp_path / "a" / "run"
    with rundir.open_run(run, {"x": 1, "trials": 2}, "search", ("trials",)) as resumed:
        assert resumed is False
    assert rundir.owner(run) == "search"
    assert yaml.safe_load((run / "config.yaml").read_text()) == {"x": 1, "trials": 2}
    with rundir.open_run(run, {"x": 1, "trials": 5}, "search", ("trials",)) as resumed:
        assert resumed is True  # a free key may change
    assert yaml.safe_load((run / "config.yaml").read_text())["trials"] == 5


def test_changed_config_is_refused_and_named(tmp_path: Path):
    with rundir.open_run(tmp_path / "r", {"data": {"path": "a"}}, "grid"):
        pass
    with (
        pytest.raises(rundir.RunDirError, match=r"data\.path: 'a' -> 'b'"),
        rundir.open_run(tmp_path / "r", {"data": {"path": "b"}}, "grid"),
    ):
        pass
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text()) == {"data": {"path": "a"}}


@pytest.mark.parametrize("first, second", [("search", "grid"), ("grid", "family"), ("train", "search")])
def test_another_commands_directory_is_refused_untouched(tmp_path: Path, first: str, second: str):
    run = tmp_path / "r"
    with rundir.open_run(run, {"k": 1}, first):
        rundir.write_text(run / "result.txt", "precious")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with (
        pytest.raises(rundir.RunDirError, match=f"`{rundir.COMMAND_NAMES[first]}` run directory"),
        rundir.open_run(run, {"k": 1}, second),
    ):
        pass
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_foreign_folder_file_and_busy_directory(tmp_path: Path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with (
        pytest.raises(UserError, match="not an effnas run directory"),
        rundir.open_run(tmp_path / "foreign", {}, "search"),
    ):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"), rundir.open_run(tmp_path / "file", {}, "search"):
        pass
    with (
        pytest.raises(UserError, match="cannot create run directory"),
        rundir.open_run(tmp_path / "file" / "below", {}, "search"),
    ):
        pass
    with (
        rundir.open_run(tmp_path / "busy", {}, "search"),
        pytest.raises(UserError, match="another process"),
        rundir.open_run(tmp_path / "busy", {}, "search"),
    ):
        pass


def test_marker_of_the_first_release_is_still_read(tmp_path: Path):
    run = tmp_path / "old"
    run.mkdir()
    (run / ".effnas").write_text("effnas run directory v1\n")
    (run / "config.yaml").write_text("a: 1\n")
    assert rundir.owner(run) is None
    with rundir.open_run(run, {"a": 1}, "search") as resumed:
        assert resumed


def test_repair_lines_drops_only_a_half_written_tail(tmp_path: Path):
    f = tmp_path / "j"
    good = [json.dumps({"i": i}) for i in range(3)]
    f.write_text("\n".join(good) + "\n" + '{"i": 3, "par')
    valid = lambda line: isinstance(json.loads(line), dict) if line.startswith("{") and line.endswith("}") else False
    assert rundir.repair_lines(f, valid) == len('{"i": 3, "par')
    assert f.read_text().splitlines() == good
    assert rundir.repair_lines(f, valid) == 0  # a whole file is left alone
    assert rundir.repair_lines(tmp_path / "absent", valid) == 0


def test_files_are_written_whole_with_mode_0644(tmp_path: Path):
    target = tmp_path / "t.yaml"
    rundir.write_yaml(target, {"a": 1})

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        rundir.atomic_write(target, fail)
    assert yaml.safe_load(target.read_text()) == {"a": 1}
    assert oct(os.stat(target).st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["t.yaml"]
