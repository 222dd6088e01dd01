"""``ml-assets land`` (lib/ingest/importing.py): CSV/Parquet as they come -> daily landing files
that pass the landing contract; bad input is one error line, nothing half-written."""

import dataclasses
import gzip
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.cli.main import main
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest import importing
from ml_assets.lib.ingest.contracts import (
    event_kinds,
    label_kinds,
    validate_events,
    validate_labels,
)
from ml_assets.lib.ingest.importing import LandingImportError, land, parse_mapping
from ml_assets.lib.ingest.landing import read_landing_batch
from ml_assets.lib.ingest.landing_layout import DAY, Layout
from ml_assets.specs.loading import load_spec
from ml_assets_tests.fixtures.example_specs import REPO_ROOT

TICKETS_TOML = REPO_ROOT / "examples" / "support_tickets" / "spec.toml"
NOW = datetime(2026, 8, 1, tzinfo=UTC)
EVENTS_CSV = """id,opened,customer_id,priority,message_chars,agent
007,2026-03-01T10:00:00+02:00,0042,high,120,ann
008,2026-03-01T08:00:00Z,0042,low,40,bob
009,2026-03-02T23:30:00-01:00,0100,normal,abc,ann
"""
TICKET_MAP = {"id": "ticket_id", "opened": "opened_at"}


@pytest.fixture(scope="module")
def tickets():
    return load_spec(TICKETS_TOML)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _through_contract(paths, spec, feed):
    """Every written file of ``feed`` (parts too) read as the pipeline reads it: (valid,
    quarantined)."""
    layout = Layout.scan(paths.landing / feed, DAY, "later_file", now=NOW)
    files = layout.cover(sorted(lo for _, lo in layout.files)).files
    if feed == "events":
        batch = read_landing_batch(paths, files, spec.event_columns, spec.event_ts,
                                   event_kinds(spec), spec.id_type)
        return validate_events(batch, spec, NOW)
    batch = read_landing_batch(paths, files, [spec.event_id, spec.label, spec.label_ts],
                               spec.label_ts, label_kinds(spec), spec.id_type)
    return validate_labels(batch, spec, NOW)


def test_csv_with_offsets_leading_zeros_and_extra_columns_lands_by_utc_day(tmp_path, tickets):
    paths = DataPaths(tmp_path / "data")
    src = _write(tmp_path / "in" / "tickets.csv", EVENTS_CSV)
    report = land(paths, tickets, {"events": [src]}, TICKET_MAP)["events"]
    # 23:30 at -01:00 is 00:30 UTC the next day: UTC days name the files
    assert report["written"] == ["2026-03-01", "2026-03-03"] and report["rows"] == 3
    assert report["dropped"] == ["agent"] and report["renamed"] == TICKET_MAP
    assert "1 value(s) not a number" in report["as_text"]["message_chars"]
    day = pq.read_table(paths.landing / "events" / "2026-03-01.parquet")
    assert day.column_names == tickets.event_columns
    assert day["ticket_id"].to_pylist() == ["007", "008"]  # +02:00 and Z: the same instant
    assert day["opened_at"].type == pa.timestamp("us", tz="UTC")
    assert len(set(day["opened_at"].to_pylist())) == 1
    assert day["customer_id"].to_pylist() == ["0042", "0042"]
    valid, quarantined = _through_contract(paths, tickets, "events")
    assert sorted(valid["ticket_id"]) == ["007", "008"]
    assert quarantined["record"].str.contains("abc").all() and len(quarantined) == 1


def test_hive_partitioned_parquet_directory_values_become_columns(tmp_path, tickets):
    paths = DataPaths(tmp_path / "data")
    for priority, hour in (("high", 5), ("low", 7)):
        part = tmp_path / "in" / "day=2026-03-04" / f"priority={priority}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({
            "ticket_id": [f"T{hour}"], "customer_id": ["c1"], "message_chars": [float(hour)],
            "opened_at": pa.array([pd.Timestamp(f"2026-03-04T{hour:02d}:00", tz="UTC")],
                                  pa.timestamp("ns", tz="Europe/Berlin"))}),
            part / "part-0.parquet")
    (tmp_path / "in" / "_SUCCESS").write_text("")
    report = land(paths, tickets, {"events": [str(tmp_path / "in")]})["events"]
    assert report["written"] == ["2026-03-04"] and report["dropped"] == ["day"]
    assert report["ignored_files"] == [str(tmp_path / "in" / "_SUCCESS")]
    day = pq.read_table(paths.landing / "events" / "2026-03-04.parquet")
    assert day["priority"].to_pylist() == ["high", "low"]
    assert day["message_chars"].type == pa.float64()
    valid, quarantined = _through_contract(paths, tickets, "events")
    assert len(valid) == 2 and quarantined.empty


@pytest.mark.parametrize(("row", "message"), [
    ("007,2026-03-01T10:00:00,c,low,1\n",
     "column 'opened_at' holds timestamps without a UTC offset (e.g. row 2: "
     "'2026-03-01T10:00:00'); add the UTC offset"),
    ("007,next tuesday,c,low,1\n",
     "row 2: column 'opened_at' value 'next tuesday' is not a timestamp with a UTC offset"),
    ("007,,c,low,1\n", "row 2: column 'opened_at' is empty"),
])
def test_a_bad_timestamp_refuses_naming_file_row_and_value(tmp_path, tickets, row, message):
    src = _write(tmp_path / "t.csv", "ticket_id,opened_at,customer_id,priority,message_chars\n"
                                     "001,2026-03-01T10:00:00Z,c,low,1\n" + row)
    with pytest.raises(LandingImportError) as err:
        land(DataPaths(tmp_path / "data"), tickets, {"events": [src]})
    assert str(err.value).startswith(f"{src}: ") and message in str(err.value)
    assert not (tmp_path / "data" / "landing").exists()


def test_a_missing_column_names_the_file_and_how_to_map_it(tmp_path, tickets):
    good = _write(tmp_path / "a.csv", EVENTS_CSV)
    bad = _write(tmp_path / "b.csv", EVENTS_CSV.replace("opened,", "created,"))
    with pytest.raises(LandingImportError, match=r"--map your_col=opened_at") as err:
        land(DataPaths(tmp_path / "data"), tickets, {"events": [good, bad]}, TICKET_MAP)
    assert str(err.value).startswith(f"{bad}: spec column(s) ['opened_at'] missing")
    assert "'created'" in str(err.value)


def test_rerun_is_byte_identical_and_a_changed_export_lands_only_its_new_rows(tmp_path,
                                                                             tickets):
    paths = DataPaths(tmp_path / "data")
    src = _write(tmp_path / "t.csv", EVENTS_CSV)
    land(paths, tickets, {"events": [src]}, TICKET_MAP)
    first = {p.name: p.read_bytes() for p in (paths.landing / "events").iterdir()}
    again = land(paths, tickets, {"events": [src]}, TICKET_MAP)["events"]
    assert again["written"] == [] and again["unchanged"] == ["2026-03-01", "2026-03-03"]
    assert {p.name: p.read_bytes() for p in (paths.landing / "events").iterdir()} == first

    # a changed 2026-03-01 row plus a new day: the landed files stay as they are, the changed
    # row lands as a part of its day (reported conflicting), the new day as its file
    _write(tmp_path / "t.csv", EVENTS_CSV.replace(",120,", ",121,")
           + "010,2026-03-05T10:00:00Z,0042,low,1,ann\n")
    report = land(paths, tickets, {"events": [src]}, TICKET_MAP, now=NOW)["events"]
    assert report["written"] == ["2026-03-01", "2026-03-05"] and report["unchanged"] == [
        "2026-03-03"]
    assert report["day_rows"]["2026-03-01"] == {"new": 0, "already_landed": 1, "conflicting": 1}
    assert {p.name: p.read_bytes() for p in (paths.landing / "events").iterdir()
            if p.is_file() and p.name in first} == first
    broken = paths.landing / "events" / "2026-03-05" / "part-0.parquet"  # a writer's crash
    broken.parent.mkdir()
    broken.write_bytes(b"PAR1 broken")
    with pytest.raises(LandingImportError, match=r"2026-03-05\.parquet \(and 1 more\): the landed file\(s\) of this day "
                       r"cannot be compared with the new rows \(.*part-0\.parquet"):
        land(paths, tickets, {"events": [src]}, TICKET_MAP, now=NOW)


def test_a_local_day_export_landing_into_a_landed_utc_day_adds_a_part(tmp_path, tickets):
    """Issue 16: exports cut by a +01:00 local day straddle two UTC days; each export's rows
    of an already-landed day land as a part, a rerun writes nothing, and a row whose id
    landed with other values is written, reported and quarantined by the ingest."""
    paths = DataPaths(tmp_path / "data")
    monday = _tickets_csv(tmp_path / "mon.csv", "T1,2026-03-02T00:30:00+01:00,c,low,1",
                          "T2,2026-03-02T10:00:00+01:00,c,low,2")
    tuesday = _tickets_csv(tmp_path / "tue.csv", "T3,2026-03-03T00:15:00+01:00,c,low,3",
                           "T4,2026-03-03T12:00:00+01:00,c,low,4")
    assert land(paths, tickets, {"events": [monday]}, now=NOW)["events"]["written"] == [
        "2026-03-01", "2026-03-02"]
    report = land(paths, tickets, {"events": [tuesday]}, now=NOW)["events"]
    assert report["written"] == ["2026-03-02", "2026-03-03"] and list(report["parts"]) == [
        "2026-03-02"]
    part = report["parts"]["2026-03-02"]
    assert part.startswith("landing/events/2026-03-02/part-20260801T000000Z-")
    assert report["day_rows"]["2026-03-02"] == {"new": 1, "already_landed": 0, "conflicting": 0}
    assert pq.read_table(paths.root / part)["ticket_id"].to_pylist() == ["T3"]
    landed = {p: p.read_bytes() for p in paths.landing.rglob("*.parquet")}

    again = land(paths, tickets, {"events": [tuesday, monday]}, now=NOW + timedelta(days=1))
    assert again["events"]["written"] == [] and again["events"]["day_rows"]["2026-03-02"] == {
        "new": 0, "already_landed": 2, "conflicting": 0}
    assert {p: p.read_bytes() for p in paths.landing.rglob("*.parquet")} == landed

    fixed = _tickets_csv(tmp_path / "fix.csv", "T2,2026-03-02T10:00:00+01:00,c,low,20",
                         "T5,2026-03-02T15:00:00Z,c,low,5")
    report = land(paths, tickets, {"events": [fixed]}, now=NOW + timedelta(days=2))["events"]
    assert report["day_rows"]["2026-03-02"] == {"new": 1, "already_landed": 0, "conflicting": 1}
    valid, quarantined = _through_contract(paths, tickets, "events")
    assert sorted(valid["ticket_id"]) == ["T1", "T2", "T3", "T4", "T5"]
    assert valid.set_index("ticket_id").at["T2", "message_chars"] == 2  # the first copy stands
    assert quarantined[["source", "reason"]].values.tolist() == [
        [report["parts"]["2026-03-02"],
         "duplicate ticket_id (first seen in landing/events/2026-03-02.parquet row 0)"]]


def test_labels_csv_true_false_become_0_1_by_label_day(tmp_path, tickets):
    paths = DataPaths(tmp_path / "data")
    land(paths, tickets, {"events": [_write(tmp_path / "t.csv", EVENTS_CSV)]}, TICKET_MAP)
    _write(tmp_path / "l1.csv", "ticket_id,escalated,resolved_at\n007,true,2026-03-04T10:00:00Z\n")
    with gzip.open(tmp_path / "l2.csv.gz", "wt") as fh:
        fh.write("ticket_id,escalated,resolved_at\n008,0,2026-03-04T23:30:00-02:00\n")
    report = land(paths, tickets, {"labels": [str(tmp_path / "l*.csv*")]})["labels"]
    assert len(report["files"]) == 2 and report["as_text"] == {}
    assert report["written"] == ["2026-03-04", "2026-03-05"]
    day = pq.read_table(paths.landing / "labels" / "2026-03-04.parquet")
    assert day.column_names == ["ticket_id", "escalated", "resolved_at"]
    assert day["escalated"].type == pa.int8() and day["escalated"].to_pylist() == [1]
    valid, quarantined = _through_contract(paths, tickets, "labels")
    assert len(valid) == 2 and quarantined.empty
    # the next export contradicts 007's label: written as a part, both labels quarantined as
    # today for conflicting labels (a repeat of 008's is not written again)
    _write(tmp_path / "next" / "l.csv", "ticket_id,escalated,resolved_at\n"
           "007,false,2026-03-04T10:00:00Z\n008,0,2026-03-05T01:30:00Z\n")
    report = land(paths, tickets, {"labels": [str(tmp_path / "next")]})["labels"]
    assert report["day_rows"] == {"2026-03-04": {"new": 0, "already_landed": 0, "conflicting": 1},
                                  "2026-03-05": {"new": 0, "already_landed": 1, "conflicting": 0}}
    valid, quarantined = _through_contract(paths, tickets, "labels")
    assert valid["ticket_id"].tolist() == ["008"] and quarantined["reason"].tolist() == [
        "conflicting labels for the same event_id"] * 2


def test_yes_no_label_spellings_become_0_1_and_anything_else_is_quarantined(tmp_path, tickets):
    """Issue 16: yes/no, y/n, t/f, true/false, 1/0 in any case and with blanks are booleans;
    another value keeps the column text, named in the report with file and row, and only its
    row is quarantined."""
    def land_labels(name: str, values: list[str]):
        paths = DataPaths(tmp_path / name)
        land(paths, tickets, {"events": [_write(tmp_path / "t.csv", EVENTS_CSV)]}, TICKET_MAP)
        src = _write(tmp_path / f"{name}.csv", "ticket_id,escalated,resolved_at\n" + "".join(
            f"{i},{v},2026-03-04T10:00:0{n}Z\n" for n, (i, v) in enumerate(zip(
                ["007", "008", "009"], values, strict=True))))
        return paths, src, land(paths, tickets, {"labels": [src]})["labels"]

    paths, _, report = land_labels("good", [" Yes ", "n", "T"])
    assert report["as_text"] == {}
    day = pq.read_table(paths.landing / "labels" / "2026-03-04.parquet")
    assert day["escalated"].type == pa.int8() and day["escalated"].to_pylist() == [1, 0, 1]

    paths, src, report = land_labels("bad", ["FALSE", "maybe", "y"])
    assert f"{src} row 2: 'maybe'" in report["as_text"]["escalated"]
    valid, quarantined = _through_contract(paths, tickets, "labels")
    assert valid["escalated"].tolist() == [0, 1]
    assert len(quarantined) == 1 and "maybe" in quarantined["record"].iloc[0]


def test_integer_ids_cast_only_when_every_value_is_an_integer(tmp_path):
    fraud = load_spec("card_fraud")
    header = "event_id,event_ts,card_id,merchant_id,amount,merchant_category,country,device,distance_km\n"
    row = "{},2026-07-01T10:00:00Z,{},5,9.5,grocery,DE,,\n"
    paths = DataPaths(tmp_path / "data")
    src = _write(tmp_path / "e.csv", header + row.format(1, 7) + row.format(2, "007"))
    report = land(paths, fraud, {"events": [src]})["events"]
    assert set(report["as_text"]) == {"card_id"} and "'007'" in report["as_text"]["card_id"]
    day = pq.read_table(paths.landing / "events" / "2026-07-01.parquet")
    assert day["event_id"].type == pa.int64() and day["card_id"].type == pa.string()
    valid, quarantined = _through_contract(paths, fraud, "events")
    assert valid["event_id"].tolist() == [1] and len(quarantined) == 1


def test_reports_land_only_for_a_spec_with_early_reports_and_never_beside_hourly_files(
        tmp_path, tickets):
    fraud = load_spec("card_fraud")
    paths = DataPaths(tmp_path / "data")
    reports = _write(tmp_path / "r.csv", "event_id,label,label_ts\n1,1,2026-07-02T01:00:00Z\n")
    assert land(paths, fraud, {"reports": [reports]})["reports"]["written"] == ["2026-07-02"]
    with pytest.raises(LandingImportError, match="no reports feed in spec 'support_tickets'"):
        land(paths, tickets, {"reports": [reports]})
    hourly = paths.landing / "labels" / "2026-07-02T00.parquet"
    hourly.parent.mkdir(parents=True)
    hourly.write_bytes(b"")
    with pytest.raises(LandingImportError, match="2026-07-02T00.parquet already covers part"):
        land(paths, fraud, {"labels": [reports]})
    assert not (paths.landing / "labels" / "2026-07-02.parquet").exists()


def test_cli_land_reports_and_refuses(tmp_path, capsys):
    src = _write(tmp_path / "t.csv", EVENTS_CSV)
    base = ["--data-dir", str(tmp_path / "data"), "--spec", str(TICKETS_TOML), "land"]
    assert main([*base, "--events", src, "--map", "id=ticket_id", "--map", "opened=opened_at"]) == 0
    out = capsys.readouterr().out
    assert "events: 1 file(s), 3 row(s), 2026-03-01 .. 2026-03-03: 2 day file(s) written" in out
    assert "dropped columns: ['agent']" in out
    _write(tmp_path / "t.csv", EVENTS_CSV.replace(",120,", ",121,"))  # the next export
    assert main([*base, "--events", src, "--map", "id=ticket_id", "--map", "opened=opened_at"]) == 0
    assert "  2026-03-01: 0 new, 1 already landed, 1 conflicting (same id, other values: " \
           "written, the ingest quarantines them with reasons); part landing/events/" \
           "2026-03-01/part-" in (out := capsys.readouterr().out)
    assert "  2 row(s) already landed with the same values: not written again" in out
    _write(tmp_path / "dup.csv", EVENTS_CSV + "009,2026-03-04T10:00:00Z,0100,low,7,ann\n")
    assert main([*base, "--events", str(tmp_path / "dup.csv"), "--map", "id=ticket_id",
                 "--map", "opened=opened_at"]) == 0
    assert "2 row(s) share their id with another row of this export (e.g. 009)" in \
        capsys.readouterr().out
    assert main([*base, "--events", src, "--json"]) == 1
    error = json.loads(capsys.readouterr().out)
    assert not error["ok"] and "--map your_col=ticket_id" in error["error"]


TICKETS_HEADER = "ticket_id,opened_at,customer_id,priority,message_chars\n"


def _tickets_csv(path, *rows):
    return _write(path, TICKETS_HEADER + "".join(f"{r}\n" for r in rows))


def _landed(paths, column, feed="events"):
    return [v for p in sorted((paths.landing / feed).glob("*.parquet"))
            for v in pq.read_table(p)[column].to_pylist()]


def test_hive_columns_only_below_the_named_directory_and_never_replace_a_column(tmp_path,
                                                                                tickets):
    # D1: a key=value ancestor of a named file or directory is not a column
    src = _tickets_csv(tmp_path / "customer_id=ACME" / "2026" / "e.csv",
                       "T1,2026-03-01T10:00:00Z,C-1,low,1")
    paths = DataPaths(tmp_path / "data")
    land(paths, tickets, {"events": [src]})
    land(DataPaths(tmp_path / "d2"), tickets, {"events": [str(tmp_path / "customer_id=ACME")]})
    assert _landed(paths, "customer_id") == _landed(DataPaths(tmp_path / "d2"),
                                                     "customer_id") == ["C-1"]
    # below the named directory a folder clashing with a column of the file is an error
    with pytest.raises(LandingImportError, match="folder customer_id=... and the file's column"):
        land(DataPaths(tmp_path / "d3"), tickets, {"events": [str(tmp_path)]})
    assert not (tmp_path / "d3").exists()


def test_existing_paths_with_glob_characters_are_read_literally(tmp_path, tickets):
    # D2/D18: "orders[1].csv" is that file, not a pattern matching orders1.csv
    _tickets_csv(tmp_path / "in" / "orders[1].csv", "INTENDED,2026-03-01T10:00:00Z,c,low,1")
    _tickets_csv(tmp_path / "in" / "orders1.csv", "OTHER,2026-03-01T11:00:00Z,c,low,1")
    direct = DataPaths(tmp_path / "a")
    land(direct, tickets, {"events": [str(tmp_path / "in" / "orders[1].csv")]})
    assert _landed(direct, "ticket_id") == ["INTENDED"]
    _tickets_csv(tmp_path / "exports[v2]" / "o*.csv", "STAR,2026-03-01T12:00:00Z,c,low,1")
    folder = DataPaths(tmp_path / "b")
    land(folder, tickets, {"events": [str(tmp_path / "exports[v2]")]})
    assert _landed(folder, "ticket_id") == ["STAR"]


@pytest.mark.parametrize(("text", "message"), [
    # D5/D17: a row of another width, anywhere, is one error line naming the file
    (TICKETS_HEADER + "T1,2026-03-01T10:00:00Z,c,low,1\nT2,2026-03-01T10:00:00Z,c\n",
     "not CSV with the header's number of fields in every row"),
    (TICKETS_HEADER + "T1,2026-03-01T10:00:00Z,c,low,1\n" * 30000
     + "T2,2026-03-01T10:00:00Z,c,low,1,extra\n", "Line: 30002; Original Line: T2,"),
])
def test_a_malformed_csv_row_is_one_error_line_naming_the_file(tmp_path, tickets, text,
                                                               message, capsys):
    src = _write(tmp_path / "t.csv", text)
    with pytest.raises(LandingImportError) as err:
        land(DataPaths(tmp_path / "data"), tickets, {"events": [src]})
    assert str(err.value).startswith(f"{src}: unreadable (") and "\n" not in str(err.value)
    assert message in str(err.value)
    assert main(["--data-dir", str(tmp_path / "data"), "--spec", str(TICKETS_TOML), "land",
                 "--json", "--events", src]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == str(err.value)


def test_csv_dialect_is_pinned_not_sniffed(tmp_path, tickets):
    # D10: '#' rows are data, not comments; --delimiter is the only way to another separator
    src = _tickets_csv(tmp_path / "t.csv", "#T1,2026-03-01T10:00:00Z,c,low,1",
                       "T2,2026-03-01T11:00:00Z,\"a,b\",low,1")
    paths = DataPaths(tmp_path / "data")
    land(paths, tickets, {"events": [src]})
    assert _landed(paths, "ticket_id") == ["#T1", "T2"]
    assert _landed(paths, "customer_id") == ["c", "a,b"]
    # a field spanning lines is valid CSV; an unclosed quote looks the same: counted
    spans = _tickets_csv(tmp_path / "m.csv", 'T4,2026-03-01T13:00:00Z,"c', 'd",low,1')
    report = land(DataPaths(tmp_path / "m"), tickets, {"events": [spans]})["events"]
    assert report["rows"] == 1 and report["multiline_rows"] == {spans: 1}
    semi = _write(tmp_path / "s.csv", TICKETS_HEADER.replace(",", ";")
                  + "T3;2026-03-01T12:00:00Z;c;low;1\n")
    other = DataPaths(tmp_path / "semi")
    land(other, tickets, {"events": [semi]}, delimiter=";")
    assert _landed(other, "ticket_id") == ["T3"]


@pytest.mark.parametrize("offset", ["+99:99", "+25:00", "+00:60"])
def test_impossible_utc_offsets_are_refused(tmp_path, tickets, offset):
    # D7: DuckDB would shift the instant by them
    src = _tickets_csv(tmp_path / "t.csv", f"T1,2026-03-01T10:00:00{offset},c,low,1")
    with pytest.raises(LandingImportError, match=rf"row 1: column 'opened_at' value "
                                                 rf"'2026-03-01T10:00:00\{offset}' is not a"):
        land(DataPaths(tmp_path / "data"), tickets, {"events": [src]})


def test_a_lower_case_z_is_utc(tmp_path, tickets):
    paths = DataPaths(tmp_path / "data")
    land(paths, tickets, {"events": [_tickets_csv(tmp_path / "t.csv",
                                                  "T1,2026-03-01T10:00:00z,c,low,1")]})
    assert _landed(paths, "opened_at") == [datetime(2026, 3, 1, 10, tzinfo=UTC)]


@pytest.mark.parametrize(("ts", "why"), [
    ("2026-02-28T23:59:00Z", "now + 5 minutes"),  # before the spec's start
    ("2026-08-01T00:06:00Z", "now + 5 minutes"),  # in the future
])
def test_rows_that_could_never_be_ingested_are_refused(tmp_path, tickets, ts, why):
    # D8/D4
    src = _tickets_csv(tmp_path / "t.csv", "T1,2026-03-01T10:00:00Z,c,low,1", f"T2,{ts},c,low,1")
    with pytest.raises(LandingImportError) as err:
        land(DataPaths(tmp_path / "data"), tickets, {"events": [src]}, now=NOW)
    assert str(err.value).startswith("1 row(s) with 'opened_at' outside [2026-03-01")
    assert f"{src} row 2: '{ts}'" in str(err.value) and why in str(err.value)
    assert not (tmp_path / "data" / "landing").exists()
    ended = dataclasses.replace(tickets, end=datetime(2026, 3, 2, tzinfo=UTC))
    late = _tickets_csv(tmp_path / "late.csv", "T3,2026-03-02T00:00:00Z,c,low,1")
    with pytest.raises(LandingImportError, match="2026-03-02T00:00:00\\+00:00\\) \\(the spec's"
                                                 " start .. the spec's end"):
        land(DataPaths(tmp_path / "data"), ended, {"events": [late]}, now=NOW)


def test_the_same_file_reached_twice_is_read_once(tmp_path, tickets, monkeypatch):
    # D9: abs + relative path, a symlink, e.csv and its e.csv.gz
    src = _tickets_csv(tmp_path / "in" / "e.csv", "T1,2026-03-01T10:00:00Z,c,low,1")
    (tmp_path / "in" / "link.csv").symlink_to(src)
    with gzip.open(tmp_path / "in" / "e.csv.gz", "wt") as fh:
        fh.write((tmp_path / "in" / "e.csv").read_text())
    monkeypatch.chdir(tmp_path)
    paths = DataPaths(tmp_path / "data")
    report = land(paths, tickets, {"events": [src, "in/e.csv", str(tmp_path / "in")]})["events"]
    assert _landed(paths, "ticket_id") == ["T1"] and report["rows"] == 1
    assert report["repeated_files"] == {str(tmp_path / "in" / "e.csv.gz"): src}
    with pytest.raises(LandingImportError, match="inside the data directory's landing or lake"):
        land(paths, tickets, {"events": [str(paths.landing / "events")]})


def test_suffixes_match_in_any_case_and_hidden_files_are_ignored(tmp_path, tickets):
    # D11
    _tickets_csv(tmp_path / "in" / "b.CSV", "T1,2026-03-01T10:00:00Z,c,low,1")
    (tmp_path / "in" / "._b.csv").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    _tickets_csv(tmp_path / "in" / ".hidden" / "c.csv", "T9,2026-03-01T10:00:00Z,c,low,1")
    paths = DataPaths(tmp_path / "data")
    report = land(paths, tickets, {"events": [str(tmp_path / "in")]})["events"]
    assert _landed(paths, "ticket_id") == ["T1"]
    assert sorted(report["ignored_files"]) == sorted(
        str(tmp_path / "in" / p) for p in ("._b.csv", ".hidden/c.csv"))


def test_land_refuses_a_landing_folder_resolving_outside_the_data_directory(tmp_path, tickets):
    # D12
    paths = DataPaths(tmp_path / "data")
    (tmp_path / "outside").mkdir()
    paths.landing.mkdir(parents=True)
    (paths.landing / "events").symlink_to(tmp_path / "outside")
    src = _tickets_csv(tmp_path / "t.csv", "T1,2026-03-01T10:00:00Z,c,low,1")
    with pytest.raises(LandingImportError, match="resolves outside the data directory"):
        land(paths, tickets, {"events": [src]})
    assert not list((tmp_path / "outside").iterdir())


def test_a_day_file_created_by_a_concurrent_run_is_never_overwritten(tmp_path, tickets,
                                                                     monkeypatch):
    # D6: the other run writes its file between this run's check and its write
    paths = DataPaths(tmp_path / "data")
    mine = _tickets_csv(tmp_path / "a.csv", "T1,2026-03-01T10:00:00Z,c,low,1")
    theirs = _tickets_csv(tmp_path / "b.csv", "T2,2026-03-01T11:00:00Z,c,low,1")
    real = importing.create_file_bytes

    def racing(path, data):
        monkeypatch.setattr(importing, "create_file_bytes", real)
        land(paths, tickets, {"events": [theirs]})
        return real(path, data)

    monkeypatch.setattr(importing, "create_file_bytes", racing)
    with pytest.raises(LandingImportError, match="another `ml-assets land` wrote it meanwhile"):
        land(paths, tickets, {"events": [mine]})
    assert _landed(paths, "ticket_id") == ["T2"]
    (paths.landing / "events" / "2026-03-01.parquet").unlink()
    monkeypatch.setattr(importing, "create_file_bytes", racing)  # the same rows: unchanged
    report = land(paths, tickets, {"events": [theirs]})["events"]
    assert report["written"] == [] and report["unchanged"] == ["2026-03-01"]


def test_a_header_only_csv_contributes_no_rows_and_is_reported(tmp_path, tickets):
    # D14: a day without events (a Sunday)
    empty = _tickets_csv(tmp_path / "in" / "sunday.csv")
    _tickets_csv(tmp_path / "in" / "monday.csv", "T1,2026-03-02T10:00:00Z,c,low,1")
    paths = DataPaths(tmp_path / "data")
    report = land(paths, tickets, {"events": [str(tmp_path / "in")]})["events"]
    assert report["rows"] == 1 and report["empty_files"] == [empty]
    alone = land(paths, tickets, {"events": [empty]})["events"]
    assert alone["rows"] == 0 and alone["written"] == [] and alone["first_day"] is None
    nothing = _write(tmp_path / "zero.csv", "")  # not even a header: an export of nothing
    zero = land(paths, tickets, {"events": [nothing]})["events"]
    assert zero["rows"] == 0 and zero["empty_files"] == [nothing] and zero["written"] == []


def test_a_row_of_another_width_is_named_by_row_and_line(tmp_path, tickets):
    src = _tickets_csv(tmp_path / "t.csv", "T1,2026-03-01T10:00:00Z,c,low,1",
                       "T2,2026-03-01T11:00:00Z,c")
    with pytest.raises(LandingImportError, match=r"row 2 \(line 3\) has 3 field\(s\), the "
                       r"header 5\)$"):
        land(DataPaths(tmp_path / "data"), tickets, {"events": [src]})


def test_a_source_column_mapped_twice_or_named_twice_is_refused(tmp_path, tickets):
    with pytest.raises(LandingImportError, match="maps 'a' more than once"):
        parse_mapping(["a=ticket_id", "a=opened_at"])
    src = _write(tmp_path / "t.csv", TICKETS_HEADER.replace("\n", ",priority\n")
                 + "T1,2026-03-01T10:00:00Z,c,low,1,high\n")
    with pytest.raises(LandingImportError, match=r"column\(s\) \['priority'\] appear more than"):
        land(DataPaths(tmp_path / "data"), tickets, {"events": [src]})


def test_ids_with_surrounding_whitespace_are_kept_and_counted(tmp_path, tickets):
    paths = DataPaths(tmp_path / "data")
    src = _tickets_csv(tmp_path / "t.csv", " T1,2026-03-01T10:00:00Z,c ,low,1",
                       "T2,2026-03-01T11:00:00Z,c,low,1")
    report = land(paths, tickets, {"events": [src]})["events"]
    assert _landed(paths, "ticket_id") == [" T1", "T2"]
    assert report["padded_ids"]["ticket_id"].startswith("1 value(s) with surrounding whitespace")
    assert f"{src} row 1: 'c '" in report["padded_ids"]["customer_id"]


def test_many_files_read_together_give_each_files_rows_names_and_numbers(tmp_path, tickets):
    # a year of hourly exports is read in one DuckDB scan per header; each row keeps its file
    # and 1-based row, empty files and quoted line breaks are reported per file, as one by one
    root = tmp_path / "in"
    for i in range(12):
        rows = [f"T{i}-{r},2026-03-0{1 + i % 3}T{r:02d}:00:00Z,c{r},low,{r}" for r in range(i % 4)]
        if i == 5:
            rows.append(f'T{i}-x,2026-03-02T09:00:00Z,"two\nlines",low,1')
        _tickets_csv(root / f"region=r{i % 2}" / f"h{i:02d}.csv", *rows)
    con = importing.connect()
    links = tmp_path / "links"
    links.mkdir()
    files, _ = importing.source_files([str(root)])
    feed = importing.feeds(tickets)["events"]
    together = importing._read(con, files, feed, {}, links, ",")
    one_by_one = importing._Read([], {}, set(), {}, [], {}, {})
    read_once = [s for s in files if str(s.path) not in together.repeated]  # same content
    assert len(read_once) == len(files) - 2  # three header-only files: the first one is read
    for i, source in enumerate(read_once):
        link = links / f"alone-{i}.csv"
        link.symlink_to(source.path)
        importing._read_one(con, source, link, feed, {}, ",", one_by_one)
    assert pa.concat_tables(together.tables).equals(pa.concat_tables(one_by_one.tables))
    assert len(together.tables) == 1  # one scan: same header and Hive keys, other values
    assert together.empty == one_by_one.empty == [str(root / "region=r0" / "h00.csv")]
    assert together.multiline == one_by_one.multiline == {str(root / "region=r1" / "h05.csv"): 1}


def test_a_bad_file_among_many_read_together_is_the_one_named(tmp_path, tickets):
    root = tmp_path / "in"
    for i in range(6):
        _tickets_csv(root / f"h{i}.csv", f"T{i},2026-03-01T0{i}:00:00Z,c,low,1")
    bad = _tickets_csv(root / "h3.csv", "T3,2026-03-01T03:00:00Z,c,low,1,extra")
    with pytest.raises(LandingImportError) as err:
        land(DataPaths(tmp_path / "data"), tickets, {"events": [str(root)]})
    assert str(err.value).startswith(f"{bad}: unreadable (")
