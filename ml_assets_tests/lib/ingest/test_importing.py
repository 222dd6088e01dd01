"""``ml-assets land`` (lib/ingest/importing.py): CSV/Parquet as they come -> daily landing files
that pass the landing contract; bad input is one error line, nothing half-written."""

import gzip
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.cli.main import main
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.ingest.contracts import (
    event_kinds,
    label_kinds,
    validate_events,
    validate_labels,
)
from ml_assets.lib.ingest.importing import LandingImportError, land
from ml_assets.lib.ingest.landing import read_landing_batch
from ml_assets.specs.loading import load_spec
from ml_assets_tests.fixtures.example_specs import REPO_ROOT

TICKETS_TOML = REPO_ROOT / "examples" / "support_tickets" / "spec.toml"
NOW = datetime(2026, 4, 1, tzinfo=UTC)
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
    """Every written file of ``feed`` read as the pipeline reads it: (valid, quarantined)."""
    files = [(p, datetime.fromisoformat(p.stem).replace(tzinfo=UTC),
              datetime.fromisoformat(p.stem).replace(tzinfo=UTC) + timedelta(days=1))
             for p in sorted((paths.landing / feed).glob("*.parquet"))]
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


def test_rerun_is_byte_identical_and_other_rows_are_refused_with_nothing_written(tmp_path,
                                                                                tickets):
    paths = DataPaths(tmp_path / "data")
    src = _write(tmp_path / "t.csv", EVENTS_CSV)
    land(paths, tickets, {"events": [src]}, TICKET_MAP)
    first = {p.name: p.read_bytes() for p in (paths.landing / "events").iterdir()}
    again = land(paths, tickets, {"events": [src]}, TICKET_MAP)["events"]
    assert again["written"] == [] and again["unchanged"] == ["2026-03-01", "2026-03-03"]
    assert {p.name: p.read_bytes() for p in (paths.landing / "events").iterdir()} == first

    # a changed 2026-03-01 plus a new day: refused whole, the new day is not written either
    _write(tmp_path / "t.csv", EVENTS_CSV.replace(",120,", ",121,")
           + "010,2026-03-05T10:00:00Z,0042,low,1,ann\n")
    with pytest.raises(LandingImportError) as err:
        land(paths, tickets, {"events": [src]}, TICKET_MAP)
    assert str(err.value).startswith("landing/events/2026-03-01.parquet already holds other rows")
    assert "nothing was written" in str(err.value) and "ml-assets landing accept" in str(err.value)
    assert {p.name: p.read_bytes() for p in (paths.landing / "events").iterdir()} == first


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


def test_integer_ids_cast_only_when_every_value_is_an_integer(tmp_path):
    fraud = load_spec("card_fraud")
    header = "event_id,event_ts,card_id,merchant_id,amount,merchant_category,country,device,distance_km\n"
    row = "{},2026-03-01T10:00:00Z,{},5,9.5,grocery,DE,,\n"
    paths = DataPaths(tmp_path / "data")
    src = _write(tmp_path / "e.csv", header + row.format(1, 7) + row.format(2, "007"))
    report = land(paths, fraud, {"events": [src]})["events"]
    assert set(report["as_text"]) == {"card_id"} and "'007'" in report["as_text"]["card_id"]
    day = pq.read_table(paths.landing / "events" / "2026-03-01.parquet")
    assert day["event_id"].type == pa.int64() and day["card_id"].type == pa.string()
    valid, quarantined = _through_contract(paths, fraud, "events")
    assert valid["event_id"].tolist() == [1] and len(quarantined) == 1


def test_reports_land_only_for_a_spec_with_early_reports_and_never_beside_hourly_files(
        tmp_path, tickets):
    fraud = load_spec("card_fraud")
    paths = DataPaths(tmp_path / "data")
    reports = _write(tmp_path / "r.csv", "event_id,label,label_ts\n1,1,2026-03-02T01:00:00Z\n")
    assert land(paths, fraud, {"reports": [reports]})["reports"]["written"] == ["2026-03-02"]
    with pytest.raises(LandingImportError, match="no reports feed in spec 'support_tickets'"):
        land(paths, tickets, {"reports": [reports]})
    hourly = paths.landing / "labels" / "2026-03-02T00.parquet"
    hourly.parent.mkdir(parents=True)
    hourly.write_bytes(b"")
    with pytest.raises(LandingImportError, match="2026-03-02T00.parquet already covers part"):
        land(paths, fraud, {"labels": [reports]})
    assert not (paths.landing / "labels" / "2026-03-02.parquet").exists()


def test_cli_land_reports_and_refuses(tmp_path, capsys):
    src = _write(tmp_path / "t.csv", EVENTS_CSV)
    base = ["--data-dir", str(tmp_path / "data"), "--spec", str(TICKETS_TOML), "land"]
    assert main([*base, "--events", src, "--map", "id=ticket_id", "--map", "opened=opened_at"]) == 0
    out = capsys.readouterr().out
    assert "events: 1 file(s), 3 row(s), 2026-03-01 .. 2026-03-03: 2 day file(s) written" in out
    assert "dropped columns: ['agent']" in out
    assert main([*base, "--events", src, "--json"]) == 1
    error = json.loads(capsys.readouterr().out)
    assert not error["ok"] and "--map your_col=ticket_id" in error["error"]
