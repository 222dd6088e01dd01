"""The year section keeps working: a tiny world through the same commands, never speed."""

import hashlib

import pytest

from ml_assets.bench.year_section import year_section
from ml_assets.bench.year_world import YearConfig, write_year

TINY = {"year_events": 1_500, "year_days": 6, "year_score_days": 2}


def _digest(root):
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*"))
                                   if p.is_file())).hexdigest()


def test_same_config_writes_the_same_bytes(tmp_path):
    cfg = YearConfig(events=500, days=3)
    a, b = write_year(tmp_path / "a", cfg), write_year(tmp_path / "b", cfg)
    assert a["events"] == b["events"] > 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    write_year(tmp_path / "c", YearConfig(events=500, days=3, seed=12))
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


@pytest.mark.slow
def test_a_tiny_year_runs_every_command_and_its_split_adds_up(tmp_path):
    r = year_section({"work": str(tmp_path), "threads": 1, **TINY}, log=lambda _: None)
    assert [c["command"] for c in r["commands"]] == ["land", "ingest features", "train",
                                                     "score monitor"]
    for c in r["commands"]:
        assert c["exit_code"] == 0, c["stderr_tail"]
        parts = c["startup"] + c["planning"] + c["recording"] + c["definitions"]
        assert c["compute"] >= 0 and parts + c["compute"] <= c["wall"] + 1e-9
    dagster = r["commands"][1:]
    assert all(c["events_written"] > 0 and c["calls"]["planning"] > 0 for c in dagster)
    assert r["met"] is not None and r["dagster_home_bytes"] > 0
    assert r["dagster_event_rows"] >= r["events_written"]
