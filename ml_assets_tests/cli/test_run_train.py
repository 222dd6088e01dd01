"""``ml-assets run STEP... --from --to`` and ``ml-assets train`` drive the real Dagster instance
of the data directory: the registered card carries exactly the window, cutoff and held-out
period asked for, and a bad window or range is refused in one line before any run."""

import json
import shutil
from datetime import timedelta

import pytest

from ml_assets.cli import main as cli
from ml_assets.lib.core.lake import read_parquet_files
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets_tests.conftest import SMALL_WORLD as CFG


def _day(n: int) -> str:
    return f"{CFG.start + timedelta(days=n):%Y-%m-%d}"


def _iso(n: int) -> str:
    return (CFG.start + timedelta(days=n)).isoformat()


def _run(paths, capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["--data-dir", str(paths.root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def world(fraud_world, tmp_path_factory):
    """A copy of the session's fraud world (which is never written to)."""
    paths = DataPaths(tmp_path_factory.mktemp("run_train") / "w")
    shutil.copytree(fraud_world["paths"].root, paths.root)
    return paths


def test_run_ingest_and_features_cover_the_range_asked(world, capsys):
    """Two days again, not the whole history: Dagster's cost is per partition. Steps named
    out of order and twice run once each, in pipeline order."""
    last = CFG.start + timedelta(days=CFG.days - 1)
    code, out, err = _run(world, capsys, "run", "features", "ingest", "features", "--from",
                          _day(CFG.days - 2), "--to", _day(CFG.days), "--json")
    assert code == 0, err
    steps = json.loads(out)["steps"]
    assert [s["step"] for s in steps] == ["ingest", "features"]
    for step in steps:
        runs = step["runs"]
        # --to is exclusive: the last hour is the day before's 23:00
        assert (runs[0]["partitions"], runs[0]["last"]) == (48, f"{last:%Y-%m-%d}-23:00")
        assert all(r["seconds"] > 0 for r in runs)
    # events by the hour, then labels (and quarantine) by the day
    assert (steps[0]["runs"][1]["partitions"], steps[0]["runs"][1]["last"]) == (
        2, f"{last:%Y-%m-%d}")
    assert [r["assets"] for r in steps[1]["runs"]] == [["event_features"]]
    # text output: one line per run, each step's as it finishes
    code, out, err = _run(world, capsys, "run", "features", "--from", _day(CFG.days - 1),
                          "--to", _day(CFG.days))
    assert code == 0, err
    assert out.startswith("features: event_features  24 partition(s) ") and out.count("\n") == 1


def test_run_refuses_an_unknown_step_and_checks_every_range_before_running(world, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "ingest", "deploy", "--from", _day(0),
                                       "--to", _day(1)])
    assert "invalid choice: 'deploy'" in capsys.readouterr().err
    runs = len(list((world.dagster_home / "history").rglob("*")))
    code, out, err = _run(world, capsys, "run", "ingest", "train", "--from", _day(5),
                          "--to", _day(3))
    assert code == 1 and not out and err.startswith("refused: --from")
    # a range before the data: refused before any step runs
    code, out, err = _run(world, capsys, "run", "ingest", "train", "--from", _day(-3),
                          "--to", _day(1))
    assert code == 1 and not out and err.count("\n") == 1 and "has no partition" in err
    assert len(list((world.dagster_home / "history").rglob("*"))) == runs


def test_train_registers_the_window_and_cutoff_asked(world, capsys):
    paths = world
    code, out, err = _run(paths, capsys, "train", "--start", _day(2), "--end", _day(20),
                          "--label-cutoff", _day(26), "--json")
    assert code == 0, err
    result = json.loads(out)
    card = Registry(paths.control_db).get_model(result["version"])
    assert card["training_window"]["start"] == _iso(2)
    assert card["training_window"]["end"] == _iso(20)
    assert card["label_cutoff"] == _iso(26)
    assert "held_out_period" not in card and result["held_out_period"] is None
    assert result["held_out"] == card["metrics"]["held_out"]
    assert result["held_out"]["rows"] == card["rows"]["test"] > 0
    # the alias it holds now (the first version is champion, later ones challenger)
    held = [a for a, v in Registry(paths.control_db).aliases(card["model_name"]).items()
            if v == result["version"]]
    assert result["aliases"] == held and held in (["champion"], ["challenger"])


def test_train_with_a_held_out_period_evaluates_on_that_period_only(world, capsys):
    paths = world
    code, out, err = _run(paths, capsys, "train", "--start", _day(0), "--end", _day(16),
                          "--test-start", _day(16), "--test-end", _day(22),
                          "--label-cutoff", _day(28), "--json")
    assert code == 0, err
    card = Registry(paths.control_db).get_model(json.loads(out)["version"])
    assert card["held_out_period"] == {"start": _iso(16), "end": _iso(22)}
    assert card["training_window"]["end"] == _iso(16)
    # the test split is every labelled event of the period, known at the cutoff
    labels = read_parquet_files(sorted((paths.lake / "raw_labels").glob("*.parquet")))
    lo, hi, cutoff = (CFG.start + timedelta(days=d) for d in (16, 22, 28))
    known = labels[(labels["event_ts"] >= lo) & (labels["event_ts"] < hi)
                   & (labels["label_ts"] < cutoff) & (labels["available_at"] < cutoff)]
    assert card["rows"]["test"] == card["metrics"]["held_out"]["rows"] == len(known)
    assert card["rows"]["train"] > card["rows"]["valid"] > 0
    _, text, _ = _run(paths, capsys, "models")
    assert f"held-out on {_day(16)}..{_day(22)} AUC" in text
    # the rerun from raw landing data rebuilds the period too
    from ml_assets.lib.core.workspace import Workspace
    from ml_assets.lib.training.reproduce import reproduce
    from ml_assets.specs.fraud import FRAUD_SPEC

    assert reproduce(Workspace.open(paths.root, FRAUD_SPEC), card["version"]).identical


def test_run_train_trains_on_from_to_with_labels_known_at_to(world, capsys):
    code, out, err = _run(world, capsys, "run", "train", "--from", _day(3), "--to", _day(24),
                          "--json")
    assert code == 0, err
    [step] = json.loads(out)["steps"]
    card = Registry(world.control_db).get_model(step["version"])
    assert step["step"] == "train"
    assert (card["training_window"]["start"], card["training_window"]["end"],
            card["label_cutoff"]) == (_iso(3), _iso(24), _iso(24))


def test_bad_windows_and_ranges_are_refused_in_one_line(world, capsys):
    paths = world
    code, out, err = _run(paths, capsys, "train", "--start", _day(0), "--end", _day(10),
                          "--test-start", _day(8), "--test-end", _day(12),
                          "--label-cutoff", _day(14))
    assert code == 1 and not out
    assert err.count("\n") == 1 and err.startswith("refused: test_start") and "overlaps" in err
    code, _, err = _run(paths, capsys, "train", "--start", _day(5), "--end", _day(3),
                        "--label-cutoff", _day(6))
    assert code == 1 and err.startswith("refused: start") and "before end" in err
    code, _, err = _run(paths, capsys, "run", "ingest", "--from", "2020-01-01", "--to", _day(1))
    assert code == 1 and err.count("\n") == 1 and "raw_events has no partition 2020-01-01" in err


@pytest.mark.parametrize(("fields", "named"), [
    ({"label_cutoff": "2026-07-20T00:00:00"}, "label_cutoff '2026-07-20T00:00:00' must carry a "
                                              "timezone"),
    ({"as_of": _iso(20), "label_cutoff": _iso(20)}, "as_of: give as_of or label_cutoff"),
    ({"label_cutoff": _iso(20), "end": _iso(22)}, "end"),
    ({"label_cutoff": _iso(20), "test_start": _iso(18)}, "test_start and test_end"),
])
def test_the_launchpad_config_is_validated_naming_the_field(fields, named):
    """The same checks guard a run launched from the UI (``training_set`` fails with them)."""
    from ml_assets.defs.training.assets import TrainingConfig, resolve_window
    from ml_assets.lib.training.train import WindowError
    from ml_assets.specs.fraud import FRAUD_SPEC

    with pytest.raises(WindowError) as err:
        resolve_window(None, FRAUD_SPEC, TrainingConfig(**fields))
    assert str(err.value).startswith(named)


def test_a_held_out_period_is_the_test_split_and_the_window_keeps_its_hashed_validation():
    import pandas as pd

    from ml_assets.lib.training.splits import assign_splits
    from ml_assets.lib.training.train import TrainingWindow, training_splits
    from ml_assets.specs.fraud import FRAUD_SPEC as spec

    ts = pd.date_range(CFG.start, periods=2_000, freq="15min", tz="UTC")
    frame = pd.DataFrame({spec.event_id: range(2_000), spec.event_ts: ts})
    start, end, lo, hi = (CFG.start + timedelta(days=d) for d in (0, 14, 14, 20))
    out = training_splits(frame, spec, TrainingWindow(start, end, hi, lo, hi))
    hashed = assign_splits(frame[spec.event_id], spec.model.split_salt, spec.model.split_fractions)
    in_period = (ts >= lo) & (ts < hi)
    assert (out["split"][in_period] == "test").all()
    assert set(out["split"][~in_period]) == {"train", "valid"}
    assert (out["split"] == "valid").equals(~in_period & (hashed == "valid"))
    unheld = training_splits(frame, spec, TrainingWindow(start, end, end))
    assert unheld["split"].equals(hashed)  # no held-out period: the hash split, unchanged
