"""The demo's data ends at the hour it ran (issue 20), on a timeline that is the same bytes
whatever the hour, recorded so every later entry point loads the demo with its start."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.docs.interface_contract import contract_path
from ml_assets.scenarios import demo_clock
from ml_assets.scenarios.synthetic import generate_frames, write_landing
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets.specs.loading import load_spec, spec_from_env

NOWS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31),
                    timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(now=NOWS, days=st.integers(1, 400), later=st.integers(0, 86_399))
def test_the_timeline_ends_at_the_current_hour_and_is_the_same_all_day(now, days, later):
    cfg = demo_clock.place(now, days, 0.1, 7)
    until = demo_clock.landed_until(cfg, now)
    assert cfg.start.tzinfo == UTC and cfg.start == cfg.start.replace(hour=0, minute=0,
                                                                       second=0, microsecond=0)
    assert until <= now < until + timedelta(hours=1)
    assert until - cfg.start >= timedelta(days=days - 1) and cfg.days == days
    assert cfg.end - until <= timedelta(days=1)
    same_day = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(seconds=later)
    assert demo_clock.place(same_day, days, 0.1, 7) == cfg  # same config, same bytes
    assert demo_clock.landed_until(cfg, cfg.end + timedelta(days=3)) == cfg.end


def test_another_day_gives_the_same_timeline_shifted_by_whole_days():
    a = demo_clock.place(datetime(2026, 12, 2, 9, tzinfo=UTC), 4, 0.02, 5)
    b = demo_clock.place(datetime(2027, 3, 14, 23, tzinfo=UTC), 4, 0.02, 5)
    shift = b.start - a.start
    for table_a, table_b in zip(generate_frames(a), generate_frames(b), strict=True):
        frame_a, frame_b = table_a.to_pandas(), table_b.to_pandas()
        for column in ("event_ts", "label_ts"):
            if column in frame_a:
                frame_a[column] += shift
        assert frame_a.equals(frame_b)


def _landed(paths: DataPaths) -> dict[str, str]:
    return {str(p.relative_to(paths.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in paths.landing.rglob("*.parquet")}


def test_a_later_run_lands_the_hours_that_passed_and_leaves_landed_files_alone(tmp_path):
    morning = datetime(2026, 12, 2, 9, 40, tzinfo=UTC)
    cfg = demo_clock.place(morning, 4, 0.02, 5)
    paths = DataPaths(tmp_path)
    first = write_landing(cfg, paths, demo_clock.landed_until(cfg, morning))
    before = _landed(paths)
    events = sorted(f for f in before if f.startswith("landing/events/"))
    assert events[-1] == "landing/events/2026-12-02T08.parquet"  # the hour before 09:40
    assert {f for f in before if f.startswith("landing/labels/")} == {
        f"landing/labels/2026-11-{d}.parquet" for d in (29, 30)} | {
        "landing/labels/2026-12-01.parquet"}  # today's labels are not known yet
    newest = max(pq.read_table(tmp_path / name, columns=["event_ts"])["event_ts"].to_pylist()
                 [-1:] or [cfg.start] for name in events)[0]
    assert datetime(2026, 12, 2, 8, tzinfo=UTC) <= newest < datetime(2026, 12, 2, 9, tzinfo=UTC)
    evening = morning + timedelta(hours=10)
    second = write_landing(cfg, paths, demo_clock.landed_until(cfg, evening))
    after = _landed(paths)
    assert {f: after[f] for f in before} == before
    assert sorted(after)[-1] == "landing/reports/2026-12-01.parquet"
    assert max(f for f in after if f.startswith("landing/events/")).endswith("T18.parquet")
    assert second["events"] > first["events"] and second["labels"] == first["labels"]


def test_the_placement_is_recorded_once_and_a_rerun_must_match_it(tmp_path):
    paths = DataPaths(tmp_path)
    now = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)
    placed = demo_clock.placement(paths, now, 30, 0.1, 7)
    assert placed.cfg.start == datetime(2026, 11, 3, tzinfo=UTC)
    assert placed.landed_until == datetime(2026, 12, 2, 17, tzinfo=UTC)
    # a day later the same demo continues on the same timeline, up to its end
    again = demo_clock.placement(paths, now + timedelta(days=1), 30, 0.1, 7)
    assert again.cfg == placed.cfg and again.landed_until == placed.cfg.end
    with pytest.raises(SpecError, match=r"demo\.json: .*--days 30 --scale 0.1 --seed 7"):
        demo_clock.placement(paths, now, 60, 0.1, 7)


def test_an_unrecorded_landing_directory_is_not_taken_over(tmp_path):
    paths = DataPaths(tmp_path)
    (paths.landing / "events").mkdir(parents=True)
    (paths.landing / "events" / "2026-07-01T00.parquet").write_bytes(b"other writer")
    with pytest.raises(SpecError, match="already holds files"):
        demo_clock.placement(paths, datetime(2026, 12, 2, tzinfo=UTC), 30, 0.1, 7)
    assert not (tmp_path / "demo.json").exists()


@pytest.mark.parametrize(("body", "says"), [
    ("{", "not JSON"),
    ('{"start": "2026-11-03T00:00:00+00:00", "days": 30, "scale": 0.1}', "missing key 'seed'"),
    ('{"start": "2026-11-03T05:00:00+00:00", "days": 30, "scale": 0.1, "seed": 7}',
     "not a UTC midnight"),
    ('{"start": "2026-11-03", "days": 30, "scale": 0.1, "seed": 7}', "not a UTC midnight"),
    ('{"start": "2026-11-03T00:00:00+00:00", "days": 0, "scale": 0.1, "seed": 7}',
     "days 0 is not between 1 and 3660"),
    ('{"start": "2026-11-03T00:00:00+00:00", "days": 1e400, "scale": 0.1, "seed": 7}',
     "days inf is not a whole number"),
    ('{"start": "2026-11-03T00:00:00+00:00", "days": true, "scale": 0.1, "seed": 7}',
     "days True is not a whole number"),
    ('{"start": "0001-01-01T00:00:00+00:00", "days": 3, "scale": 0.1, "seed": 7}',
     "not between 2020-01-01 and 2100-01-01"),
    ('{"start": "2026-11-03T00:00:00+00:00", "days": 3, "scale": NaN, "seed": 7}',
     "scale must be in"),
    ("[]", "not a JSON object"),
])
def test_a_damaged_record_is_an_error_naming_the_file_and_key(tmp_path, body, says):
    (tmp_path / "demo.json").write_text(body)
    with pytest.raises(SpecError, match=f"demo.json: .*{says}"):
        load_spec("card_fraud", data_dir=tmp_path)


def test_every_entry_point_loads_the_demo_with_its_recorded_start(tmp_path):
    placed = demo_clock.placement(DataPaths(tmp_path), datetime(2026, 12, 2, 17, tzinfo=UTC),
                                  30, 0.1, 7)
    for spec in (load_spec("card_fraud", data_dir=tmp_path), spec_from_env({}, tmp_path),
                 spec_from_env({"ML_ASSETS_SPEC": "card_fraud"}, tmp_path),
                 load_spec("ml_assets.specs.fraud:FRAUD_SPEC", data_dir=tmp_path)):
        assert spec.start == placed.cfg.start
        assert spec.origin.ref == "ml_assets.specs.fraud:FRAUD_SPEC@2026-11-03"
        assert spec.origin.sha256 == load_spec("card_fraud").origin.sha256
    # the reference alone loads it again (a Spark driver, an export on another machine)
    again = load_spec("ml_assets.specs.fraud:FRAUD_SPEC@2026-11-03")
    assert again == load_spec("card_fraud", data_dir=tmp_path) == load_spec("card_fraud@2026-11-03")
    assert contract_path(again) == contract_path(FRAUD_SPEC)  # the start is not the file
    assert dataclass_fields_but_start(again) == dataclass_fields_but_start(FRAUD_SPEC)
    # without a record, and for another spec, the data directory changes nothing
    assert load_spec("card_fraud", data_dir=tmp_path / "elsewhere").start == FRAUD_SPEC.start
    with pytest.raises(SpecError, match="@2026-13-01: a start must be a YYYY-MM-DD date"):
        load_spec("card_fraud@2026-13-01")
    assert json.loads((tmp_path / "demo.json").read_text())["days"] == 30


def dataclass_fields_but_start(spec) -> dict:
    return {k: v for k, v in vars(spec).items() if k not in ("start", "origin")}


def test_a_moved_start_replaces_the_earlier_one_and_must_be_a_utc_midnight():
    spec = load_spec("card_fraud@2026-11-03").starting(datetime(2027, 1, 1, tzinfo=UTC))
    assert spec.origin.ref == "ml_assets.specs.fraud:FRAUD_SPEC@2027-01-01"
    assert load_spec(spec.origin.ref) == spec
    assert FRAUD_SPEC.starting(datetime(2027, 1, 1, tzinfo=UTC)).origin is None
    with pytest.raises(SpecError, match="UTC midnight"):
        FRAUD_SPEC.starting(datetime(2027, 1, 1, 5, tzinfo=UTC))


def test_less_than_a_day_of_data_and_a_racing_first_run_are_refused(tmp_path):
    paths = DataPaths(tmp_path)
    with pytest.raises(SpecError, match="less than a day of data"):
        demo_clock.placement(paths, datetime(2026, 12, 2, 0, 30, tzinfo=UTC), 1, 0.1, 7)
    cfg = demo_clock.place(datetime(2026, 12, 2, 9, tzinfo=UTC), 30, 0.1, 7)
    demo_clock.record(tmp_path, cfg)
    with pytest.raises(FileExistsError):  # never replaced, even by the same placement
        demo_clock.record(tmp_path, cfg)
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]  # no partial file left


@pytest.mark.parametrize(("spec", "says"), [
    (str(Path(__file__).parents[2] / "examples/support_tickets/spec.py"),
     "generates the card_fraud data"),
    ("card_fraud@2026-01-01", "places its own start"),
])
def test_the_demo_refuses_a_spec_it_would_not_generate(tmp_path, capsys, spec, says):
    from ml_assets.cli.main import main

    assert main(["--data-dir", str(tmp_path), "--spec", spec, "demo", "--days", "3"]) == 1
    assert says in capsys.readouterr().err
    assert not (tmp_path / "demo.json").exists()
