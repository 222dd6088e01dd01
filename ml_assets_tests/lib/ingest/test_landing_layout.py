"""Issue 16 item 3: landing files of any period (hourly, daily) and a declared completeness
rule, so only periods that had data need a file (lib/ingest/landing_layout.py)."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from ml_assets.lib.core.catalog import BATCH_SCORES, EVENT_FEATURES, RAW_EVENTS, Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.core.registry import Registry
from ml_assets.lib.ingest import integrity as landing_integrity
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import ingest_events, ingest_labels
from ml_assets.lib.ingest.landing_layout import DAY, HOUR, Layout
from ml_assets.lib.ingest.quarantine import read_quarantine, write_quarantine
from ml_assets.lib.training.reproduce import stage_landing
from ml_assets.lib.training.train import TrainingWindow
from ml_assets_tests.fixtures.reliability_world import NOW, good_events, spec_with

D1 = datetime(2026, 7, 1, tzinfo=UTC)
D2, D3, D4 = D1 + DAY, D1 + 2 * DAY, D1 + 3 * DAY


def land_day(paths: DataPaths, day: datetime, first_id: int, n: int = 48) -> pd.DataFrame:
    """``n`` events spread over ``day`` (one every 30 minutes) in its daily file."""
    df = good_events(day, n, first_id).assign(
        event_ts=pd.date_range(day, periods=n, freq="30min", tz="UTC").astype("datetime64[us, UTC]"))
    df.to_parquet(paths.landing / "events" / f"{day:%Y-%m-%d}.parquet", index=False)
    return df


def land_part(paths: DataPaths, period: str, name: str, df: pd.DataFrame) -> str:
    """``df`` as part ``name`` of ``period`` (``landing/events/<period>/<name>``)."""
    path = paths.landing / "events" / period / name
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return str(path.relative_to(paths.root))


def ingest_day1(paths: DataPaths, spec) -> None:
    """Day 1 landed as its daily file and ingested into raw_events (no ledger record)."""
    land_day(paths, D1, 1)
    events = Catalog(paths.lake).table(RAW_EVENTS)
    for h, part in ingest_events(paths, spec, hours_of(D1), NOW)[0].items():
        events.write(h, part)


def hours_of(day: datetime) -> list[datetime]:
    return [day + i * HOUR for i in range(24)]


def layout(paths: DataPaths, completeness: str = "later_file", partition=HOUR) -> Layout:
    return Layout.scan(paths.landing / "events", partition, completeness)


@pytest.fixture
def paths(tmp_path) -> DataPaths:
    return DataPaths(tmp_path).ensure()


def test_a_daily_file_covers_its_24_hours_and_an_hourly_file_one(paths):
    land_day(paths, D1, 1)
    good_events(D2 + 5 * HOUR).to_parquet(paths.landing_events_file(D2 + 5 * HOUR), index=False)
    cov = layout(paths).cover([*hours_of(D1), D2 + 5 * HOUR])
    assert [(p.name, lo, hi) for p, lo, hi in cov.files] == [
        ("2026-07-01.parquet", D1, D2), ("2026-07-02T05.parquet", D2 + 5 * HOUR, D2 + 6 * HOUR)]
    assert cov.empty == [] and layout(paths).covering(D1 + 7 * HOUR)[0][0].name == "2026-07-01.parquet"


def test_a_daily_and_an_hourly_file_for_the_same_hour_is_refused_naming_both(paths):
    land_day(paths, D1, 1)
    good_events(D1 + 7 * HOUR).to_parquet(paths.landing_events_file(D1 + 7 * HOUR), index=False)
    with pytest.raises(ContractError, match=r"^2026-07-01T07: covered by "
                       r"events/2026-07-01T07\.parquet and events/2026-07-01\.parquet"):
        layout(paths).cover([D1 + 7 * HOUR])


def test_a_period_in_parts_is_covered_by_its_file_and_every_part(paths):
    land_day(paths, D1, 1)
    land_part(paths, "2026-07-01", "part-b.parquet", good_events(D1 + 3 * HOUR, 2, 100))
    land_part(paths, "2026-07-01", "region=eu/part-a.parquet", good_events(D1, 1, 200))
    for ignored in ("_SUCCESS", ".part-c.parquet.crc", "_temporary/0/part-d.parquet"):
        (paths.landing / "events" / "2026-07-01" / ignored).parent.mkdir(parents=True,
                                                                        exist_ok=True)
        (paths.landing / "events" / "2026-07-01" / ignored).write_bytes(b"")
    scanned = layout(paths)
    assert [(scanned.shown(p), lo, hi) for p, lo, hi in scanned.cover(hours_of(D1)).files] == [
        ("events/2026-07-01.parquet", D1, D2), ("events/2026-07-01/part-b.parquet", D1, D2),
        ("events/2026-07-01/region=eu/part-a.parquet", D1, D2)]
    assert scanned.ready(hours_of(D1)) == [hours_of(D1)]  # the day's parts run together
    # a period only in parts (as Spark writes it) is a data file: it completes earlier gaps
    land_part(paths, "2026-07-03", "part-0.parquet", good_events(D3, 1, 300))
    assert layout(paths).cover(hours_of(D2)).empty == hours_of(D2)
    # an hour in parts under a daily file: two periods cover it, refused naming both
    land_part(paths, "2026-07-01T05", "part-0.parquet", good_events(D1 + 5 * HOUR, 1, 400))
    with pytest.raises(ContractError, match=r"^2026-07-01T05: covered by "
                       r"events/2026-07-01T05/part-0\.parquet and events/2026-07-01\.parquet"):
        layout(paths).cover([D1 + 5 * HOUR])
    # a daily partition (labels) with an hour in parts: the day waits for its other hours
    hourly = paths.landing / "labels" / "2026-07-02T00" / "part-0.parquet"
    hourly.parent.mkdir(parents=True)
    hourly.write_bytes(b"")
    with pytest.raises(ContractError, match=r"^2026-07-02T01 \(partition 2026-07-02 landed "
                       r"hourly\): no landing file \(labels/2026-07-02T01\.parquet\)"):
        Layout.scan(paths.landing / "labels", DAY, "later_file").cover([D2])
    # parts of another format, and no Parquet: refused by name, not taken as an empty day
    (paths.landing / "events" / "2026-07-02").mkdir()
    (paths.landing / "events" / "2026-07-02" / "part-0.csv").write_text("event_id\n1\n")
    with pytest.raises(ContractError, match=r"not found, but \['2026-07-02/part-0.csv'\] is there"):
        layout(paths).cover([D2])


def test_parts_of_a_day_are_ingested_together_and_a_repeated_id_quarantined_once(paths):
    spec = spec_with(start=D1)
    land_day(paths, D1, 1)  # id 5 at 02:00
    again = good_events(D1 + 3 * HOUR, 3, 99).assign(event_id=[99, 5, 100], amount=7.0)
    part = land_part(paths, "2026-07-01", "part-1.parquet", again)  # id 5 again, at 03:07
    for hours in ([D1 + 3 * HOUR], [D1 + 2 * HOUR], hours_of(D1)):
        valid, quarantined = ingest_events(paths, spec, hours, NOW)
        write_quarantine(paths, RAW_EVENTS, quarantined, [h.strftime("%Y-%m-%dT%H") for h in hours])
    assert sorted(sum((v["event_id"].to_pylist() for v in valid.values()), [])) == [
        *range(1, 49), 99, 100]
    assert valid[D1 + 2 * HOUR]["amount"].to_pylist() != [7.0] * 2  # the first copy of id 5 stands
    rows = read_quarantine(paths)
    assert rows[["source", "row"]].values.tolist() == [[part, 1]]
    assert rows["reason"].tolist() == [
        "duplicate event_id (first seen in landing/events/2026-07-01.parquet row 4)"]


def test_a_part_landing_after_its_day_was_ingested_is_late_until_its_rerun(paths):
    spec = spec_with(start=D1)
    registry = Registry(paths.control_db)
    ingest_day1(paths, spec)
    landing_integrity.record(paths, registry, [paths.landing / "events" / "2026-07-01.parquet"],
                             "test")  # what the append-only check of that run did
    assert landing_integrity.late_files(paths, registry, spec) == []
    part = land_part(paths, "2026-07-01", "part-x.parquet", good_events(D1 + 3 * HOUR, 2, 100))
    [late] = landing_integrity.late_files(paths, registry, spec)
    assert (late.path, late.lo, late.hi, len(late.ingested)) == (part, D1, D2, 24)
    assert late.describe().startswith(
        f"{part} landed after raw_events/2026-07-01T00 (and 23 more) was ingested without it "
        "(a late delivery): reingest it with `ml-assets run ingest features --from "
        "2026-07-01 --to 2026-07-02`")  # nothing scored, no features built after it: no more
    # features built to day 2's 21:00 and scores from day 1: rescore, and rebuild only to
    # day 2's end (a range past what was built would be refused)
    catalog = Catalog(paths.lake)
    for hour in (D1 + 5 * HOUR, D2 + 20 * HOUR):
        catalog.table(EVENT_FEATURES).write(hour, pd.DataFrame({"x": [1]}))
    catalog.table(BATCH_SCORES).write(D1 + 5 * HOUR, pd.DataFrame({"x": [1]}))
    [late] = landing_integrity.late_files(paths, registry, spec)
    assert "reingest it with `ml-assets run ingest features score --from 2026-07-01 --to " \
           "2026-07-02`" in late.describe()
    assert late.describe().endswith("`ml-assets run features score --from 2026-07-02 --to "
                                    "2026-07-03`")
    valid, _ = ingest_events(paths, spec, hours_of(D1), NOW)  # the rerun reads both
    assert sum(map(len, valid.values())) == 50
    landing_integrity.record(paths, registry, [paths.root / part], "test")
    assert landing_integrity.late_files(paths, registry, spec) == []


def test_later_file_a_gap_is_empty_once_a_later_file_landed_and_the_last_day_waits(paths):
    land_day(paths, D1, 1)
    land_day(paths, D3, 1000)  # D2 had no data: no file
    cov = layout(paths).cover(hours_of(D1) + hours_of(D2) + hours_of(D3))
    assert cov.empty == hours_of(D2) and [p.name for p, _, _ in cov.files] == [
        "2026-07-01.parquet", "2026-07-03.parquet"]
    with pytest.raises(ContractError) as err:
        layout(paths).cover([D4 + 7 * HOUR, D4 + 8 * HOUR])
    assert str(err.value) == (
        "2026-07-04T07: no landing file (events/2026-07-04T07.parquet or "
        "events/2026-07-04.parquet) and not complete yet: completeness 'later_file' waits for "
        "a file of a later period (and 1 later partition(s))")
    # a historical dataset (spec end): an export landed in pieces is not taken for the whole
    def ended():
        return Layout.scan(paths.landing / "events", HOUR, "later_file", end=D4 + DAY)
    assert ended().cover(hours_of(D2)).empty == hours_of(D2)  # a later file still completes
    with pytest.raises(ContractError, match=r"^2026-07-04T00: .* waits for a file of a later "
                       r"period, or \(if the data stops before the dataset's end\) for "
                       r"events/_SUCCESS holding 2026-07-05T00:00:00\+00:00"):
        ended().cover(hours_of(D4))
    (paths.landing / "events" / "_SUCCESS").touch()  # Spark's empty marker says nothing
    with pytest.raises(ContractError):
        ended().cover(hours_of(D4))
    (paths.landing / "events" / "_SUCCESS").write_text("2026-07-05T00:00:00Z")
    assert ended().cover(hours_of(D4)).empty == hours_of(D4)


def test_marker_a_gap_waits_until_success_says_complete(paths):
    land_day(paths, D1, 1)
    land_day(paths, D3, 1000)
    gap = hours_of(D2)
    with pytest.raises(ContractError, match=r"^2026-07-02T00: .*completeness 'marker' waits for "
                       r"events/_SUCCESS through 2026-07-02T01:00:00\+00:00"):
        layout(paths, "marker").cover(gap)  # a later data file alone completes nothing
    (paths.landing / "events" / "2026-07-02._SUCCESS").touch()  # that one day is complete
    assert layout(paths, "marker").cover(gap).empty == gap
    (paths.landing / "events" / "2026-07-02._SUCCESS").unlink()
    (paths.landing / "events" / "_SUCCESS").write_text("2026-07-02T12:00:00Z\n")
    marked = layout(paths, "marker")
    assert marked.cover(gap[:12]).empty == gap[:12]
    with pytest.raises(ContractError, match="^2026-07-02T12: no landing file"):
        marked.cover(gap)
    (paths.landing / "events" / "_SUCCESS").write_text("yesterday")
    with pytest.raises(ContractError, match=r"_SUCCESS: holds 'yesterday', not one ISO-8601"):
        layout(paths, "marker")


def test_a_daily_file_is_ingested_into_its_hours_and_a_bad_row_quarantined_once(paths):
    spec = spec_with(start=D1)
    df = land_day(paths, D1, 1)
    df.loc[15, "amount"] = -5.0  # 07:30 -> hour 07
    df.loc[3, "event_ts"] = D2 + HOUR  # outside the file's day -> filed under its first hour
    df.to_parquet(paths.landing / "events" / "2026-07-01.parquet", index=False)
    land_day(paths, D2, 1000)
    runs = [[D1 + 7 * HOUR], [D1 + 8 * HOUR], [D1, D1 + 7 * HOUR]]  # two hourly runs, a range
    for hours in runs:
        valid, quarantined = ingest_events(paths, spec, hours, NOW)
        assert {h: len(v) for h, v in valid.items()} == {
            h: 2 - (h == D1 + 7 * HOUR) - (h == D1 + HOUR) for h in hours}
        write_quarantine(paths, RAW_EVENTS, quarantined, [h.strftime("%Y-%m-%dT%H") for h in hours])
    rows = read_quarantine(paths)
    assert sorted(rows["row"]) == [3, 15] and set(rows["source"]) == {
        "landing/events/2026-07-01.parquet"}
    assert "partition" not in rows.columns


def test_a_duplicate_names_the_daily_file_that_holds_the_first_copy(paths):
    spec = spec_with(start=D1)
    land_day(paths, D1, 1)
    valid, _ = ingest_events(paths, spec, [D1 + 2 * HOUR], NOW)
    Catalog(paths.lake).table(RAW_EVENTS).write(D1 + 2 * HOUR, valid[D1 + 2 * HOUR])
    again = good_events(D2 + 4 * HOUR, 3, first_id=5)  # ids 5, 6 landed at 02:00 on day 1
    again.to_parquet(paths.landing_events_file(D2 + 4 * HOUR), index=False)
    valid, quarantined = ingest_events(paths, spec, [D2 + 4 * HOUR], NOW)
    assert list(quarantined["reason"]) == [
        "duplicate event_id, first seen in landing/events/2026-07-01.parquet"] * 2
    assert list(quarantined["partition"]) == ["2026-07-02T04"] * 2
    assert valid[D2 + 4 * HOUR]["event_id"].to_pylist() == [7]


def test_label_days_without_a_file_are_empty_once_a_later_day_landed(paths):
    spec = spec_with(start=D1)
    ingest_day1(paths, spec)
    pd.DataFrame({"event_id": [1, 2], "label": [1, 0],
                  "label_ts": pd.to_datetime([D3 + HOUR] * 2, utc=True)}).to_parquet(
        paths.landing_labels_file(D3), index=False)
    labels, quarantined = ingest_labels(paths, spec, [D2, D3], NOW)
    assert {d: len(v) for d, v in labels.items()} == {D2: 0, D3: 2} and quarantined.empty
    with pytest.raises(ContractError, match=r"^2026-07-04: no landing file \(labels/2026-07-04"):
        ingest_labels(paths, spec, [D4], NOW)


def test_reproduce_stages_the_covering_files_and_what_completes_the_gaps(paths, tmp_path):
    spec = spec_with(start=D1)
    land_day(paths, D1, 1)
    land_day(paths, D3, 1000)
    labels = paths.landing_labels_file(D3)
    pd.DataFrame({"event_id": [1], "label": [1], "label_ts": pd.to_datetime([D3], utc=True)}
                 ).to_parquet(labels, index=False)
    part = land_part(paths, "2026-07-01", "part-1.parquet", good_events(D1 + HOUR, 2, 100))
    registry = Registry(paths.control_db)
    landing_integrity.record(paths, registry, [paths.landing / "events" / "2026-07-01.parquet",
                                               paths.root / part], "test")
    window = TrainingWindow(D1, D2 + 12 * HOUR, D3)  # day 2 has no file: empty, as day 3 landed
    scratch = DataPaths(tmp_path / "scratch").ensure()
    assert stage_landing(paths, registry, scratch, spec, window) == []
    staged = sorted(str(p.relative_to(scratch.landing)) for p in scratch.landing.rglob("*.*"))
    assert staged == ["events/2026-07-01.parquet", "events/2026-07-01/part-1.parquet",
                      "events/2026-07-03.parquet", "labels/2026-07-03.parquet"]
    valid, _ = ingest_events(scratch, spec, hours_of(D1) + hours_of(D2)[:12], NOW)
    assert sum(map(len, valid.values())) == 50
    (paths.landing / "events" / "2026-07-01.parquet").unlink()  # recorded, now gone
    (paths.root / part).unlink()  # a part the ledger knows: missing too
    problems = stage_landing(paths, registry, DataPaths(tmp_path / "s2").ensure(), spec, window)
    assert [(p.path, p.problem) for p in problems] == [
        ("landing/events/2026-07-01.parquet", "missing"), (part, "missing")]


def test_a_future_dated_file_completes_no_earlier_period_and_is_reported(paths):
    spec = spec_with(start=D1)
    land_day(paths, D1, 1)
    land_day(paths, datetime(2062, 3, 1, tzinfo=UTC), 1000)  # a typo for 2026-03-01
    future = Layout.scan(paths.landing / "events", HOUR, "later_file", now=D3)
    assert future.notes == ("events/2062-03-01.parquet starts after now (2026-07-03T00:00:00+00:00)"
                            ": a mistyped date? It completes no earlier period; remove or rename it",)
    with pytest.raises(ContractError, match=r"^2026-07-02T00: no landing file .* waits for a file "
                       r"of a later period; events/2062-03-01.parquet starts after now"):
        ingest_events(paths, spec, hours_of(D2), D3)
    # a file dated within the tolerance of now (a producer's clock ahead) still completes
    good_events(D3, 1, 2000).to_parquet(paths.landing_events_file(D3), index=False)
    near = Layout.scan(paths.landing / "events", HOUR, "later_file", now=D3 - HOUR / 2)
    assert near.cover(hours_of(D2)).empty == hours_of(D2)


def test_success_is_ignored_by_later_file_and_never_completes_the_future_under_marker(paths):
    land_day(paths, D1, 1)
    land_day(paths, D3, 1000)
    marker = paths.landing / "events" / "_SUCCESS"
    marker.touch()  # Spark's empty marker: no reason to refuse a later_file landing
    assert layout(paths).cover(hours_of(D2)).empty == hours_of(D2)
    with pytest.raises(ContractError, match=r"_SUCCESS: is empty; under landing_completeness "
                       r"'marker' it must hold the time the directory is complete through"):
        layout(paths, "marker")
    marker.write_text("2999-01-01T00:00:00Z")
    clamped = Layout.scan(paths.landing / "events", HOUR, "marker", now=D2 + 6 * HOUR)
    assert clamped.through == D2 + 6 * HOUR and clamped.notes[0] == (
        "events/_SUCCESS says complete through 2999-01-01T00:00:00+00:00, after now "
        "(2026-07-02T06:00:00+00:00): taken as now")  # (then: day 3's file is after now too)
    assert clamped.cover(hours_of(D2)[:6]).empty == hours_of(D2)[:6]
    with pytest.raises(ContractError, match="^2026-07-02T06: no landing file"):
        clamped.cover(hours_of(D2))


def test_a_label_file_landing_after_its_day_was_ingested_empty_is_late_until_recorded(paths):
    spec = spec_with(start=D1)
    registry = Registry(paths.control_db)
    ingest_day1(paths, spec)  # written after its file landed, never recorded: not late
    labels = pd.DataFrame({"event_id": [1], "label": [1], "label_ts": pd.to_datetime([D3], utc=True)})
    labels.to_parquet(paths.landing_labels_file(D3), index=False)
    for d, part in ingest_labels(paths, spec, [D2, D3], NOW)[0].items():
        Catalog(paths.lake).table("raw_labels").write(d, part)  # day 2: empty
    assert landing_integrity.late_files(paths, registry, spec) == []
    labels.assign(event_id=2).to_parquet(paths.landing_labels_file(D2), index=False)
    [late] = landing_integrity.late_files(paths, registry, spec)
    assert (late.path, late.asset, late.ingested) == (
        "landing/labels/2026-07-02.parquet", "raw_labels", ("2026-07-02",))
    landing_integrity.record(paths, registry, [paths.landing_labels_file(D2)], "test")
    assert landing_integrity.late_files(paths, registry, spec) == []


def land_hours(paths: DataPaths, day: datetime, hours: list[int], first_id: int) -> None:
    """Two events in each of ``hours`` of ``day``, each hour in its hourly file."""
    for i, h in enumerate(hours):
        good_events(day + h * HOUR, 2, first_id + 2 * i).to_parquet(
            paths.landing_events_file(day + h * HOUR), index=False)


def test_a_daily_partition_is_read_from_its_hourly_files_and_their_gaps_complete_by_the_rule(
        paths):
    land_hours(paths, D1, list(range(24)), 1)
    files = layout(paths, partition=DAY).cover([D1]).files
    assert [(p.name, lo, hi) for p, lo, hi in files] == [
        (f"2026-07-01T{h:02d}.parquet", D1 + h * HOUR, D1 + (h + 1) * HOUR) for h in range(24)]
    land_hours(paths, D2, [0, 5, 12], 100)  # the other hours had no events
    # hours 1-4 and 6-11 are complete (a later hour landed); 13 on waits for a later file
    waits = ("2026-07-02T13 (partition 2026-07-02 landed hourly): no landing file "
             "(events/2026-07-02T13.parquet) and not complete yet: completeness 'later_file' "
             "waits for a file of a later period")
    with pytest.raises(ContractError) as err:
        layout(paths, partition=DAY).cover([D1, D2])
    assert str(err.value) == waits
    waiting = layout(paths, partition=DAY)
    assert waiting.ready([D1, D2]) == [[D1]] and waiting.found([D2]) == {}
    land_hours(paths, D3, [2], 200)
    days = layout(paths, partition=DAY)
    cov = days.cover([D1, D2])
    assert [p.name for p, _, _ in cov.files][24:] == [
        "2026-07-02T00.parquet", "2026-07-02T05.parquet", "2026-07-02T12.parquet"]
    assert days.ready([D1, D2, D3]) == [[D1], [D2]] and cov.empty == []
    assert days.completing(D3) == [paths.landing_events_file(D3 + 2 * HOUR)]
    candidates = days.candidates(D2)  # reproduce stages any of them that landed
    assert candidates[:2] == ["events/2026-07-02.parquet", "events/2026-07-02T00.parquet"]
    assert len(candidates) == 25
    # marker: each hour without a file needs _SUCCESS through its end or its hour's/day's marker
    with pytest.raises(ContractError, match=r"^2026-07-02T01 \(partition 2026-07-02 landed "
                       r"hourly\): .*'marker' waits for events/_SUCCESS through "
                       r"2026-07-02T02:00:00\+00:00"):
        layout(paths, "marker", DAY).cover([D2])
    (paths.landing / "events" / "_SUCCESS").write_text("2026-07-02T12:00:00Z")
    (paths.landing / "events" / "2026-07-02T13._SUCCESS").touch()
    with pytest.raises(ContractError, match=r"^2026-07-02T14 \(partition 2026-07-02"):
        layout(paths, "marker", DAY).cover([D2])
    (paths.landing / "events" / "2026-07-02._SUCCESS").touch()
    assert len(layout(paths, "marker", DAY).cover([D2]).files) == 3
    # a daily file and an hourly one of the same day cover an hour twice: refused naming both
    land_day(paths, D3, 300)
    with pytest.raises(ContractError, match=r"^2026-07-03: covered by events/2026-07-03T02\.parquet"
                       r" and events/2026-07-03\.parquet; a period must land in files of one"):
        layout(paths, partition=DAY).cover([D3])


def test_an_hourly_file_landing_after_its_day_was_ingested_is_late(paths):
    spec = spec_with(start=D1, partition_grain="daily")
    land_hours(paths, D1, [0, 9], 1)
    land_hours(paths, D2, [0], 100)
    [(day, rows)] = ingest_events(paths, spec, [D1], NOW)[0].items()
    assert day == D1 and rows["event_id"].to_pylist() == [1, 2, 3, 4]
    Catalog(paths.lake, "daily").table(RAW_EVENTS).write(D1, rows)
    registry = Registry(paths.control_db)
    assert landing_integrity.late_files(paths, registry, spec) == []
    land_hours(paths, D1, [5], 500)  # hour 5 was taken as empty: a late delivery
    [late] = landing_integrity.late_files(paths, registry, spec)
    assert (late.path, late.lo, late.ingested) == (
        "landing/events/2026-07-01T05.parquet", D1 + 5 * HOUR, ("2026-07-01",))


def test_reproduce_stages_every_hourly_file_of_a_daily_partition(paths, tmp_path):
    spec = spec_with(start=D1, partition_grain="daily")
    land_hours(paths, D1, [0, 9], 1)
    land_hours(paths, D2, [3], 100)  # completes day 1's hours after 09
    registry = Registry(paths.control_db)
    landing_integrity.record(paths, registry, [paths.landing_events_file(D1 + h * HOUR)
                                               for h in (0, 9)], "test")
    scratch = DataPaths(tmp_path / "scratch").ensure()
    assert stage_landing(paths, registry, scratch, spec, TrainingWindow(D1, D2, D1)) == []
    assert sorted(p.name for p in (scratch.landing / "events").iterdir()) == [
        "2026-07-01T00.parquet", "2026-07-01T09.parquet", "2026-07-02T03.parquet"]
    assert len(ingest_events(scratch, spec, [D1], NOW)[0][D1]) == 4
