"""Issue 15, items 1-3 at the library level (docs/reliability.md, rows T*/U*/R*): one canonical
stored type per spec column whatever the writer produced, event_id unique across the whole lake,
and an audited acceptance of a corrected re-delivery."""

import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.catalog import Catalog
from ml_assets.lib.core.paths import DataPaths, write_parquet_atomic
from ml_assets.lib.core.registry import Registry, RegistryError
from ml_assets.lib.features.build import build_features
from ml_assets.lib.ingest import integrity
from ml_assets.lib.ingest.contracts import ContractError
from ml_assets.lib.ingest.landing import ingest_events, ingest_labels
from ml_assets.specs.fraud import FRAUD_SPEC
from ml_assets_tests.fixtures.reliability_world import NOW, REPO, child_env, good_events, hours

SPEC = FRAUD_SPEC
START = SPEC.start_utc
HS = hours(START, 4)


def _world(root, writers: dict | None = None) -> DataPaths:
    """Four hours of one card's events landed; ``writers[i]`` rewrites hour i's frame/table."""
    paths = DataPaths(root).ensure()
    for i, h in enumerate(HS):
        df = good_events(h, n=6, first_id=100 * i)
        df["card_id"] = 7  # one card: every later window looks back over the earlier hours
        out = (writers or {}).get(i, lambda d: d)(df)
        if isinstance(out, pa.Table):
            pq.write_table(out, paths.landing_events_file(h))
        else:
            out.to_parquet(paths.landing_events_file(h), index=False)
    return paths


def _ingest_all(paths: DataPaths, hs=HS) -> list[str]:
    notes: list[str] = []
    for h in hs:
        valid, _ = ingest_events(paths, SPEC, [h], NOW, notes)
        write_parquet_atomic(valid[h], Catalog(paths.lake).table("raw_events").path(h))
    return notes


def _features(paths: DataPaths, h) -> pd.DataFrame:
    return pd.concat([c for _, _, c in build_features(paths, SPEC, h, h + timedelta(hours=1))],
                     ignore_index=True)


def _raw_schema(paths: DataPaths, h) -> pa.Schema:
    return pq.read_schema(Catalog(paths.lake).table("raw_events").path(h))


# -- item 1: canonical stored types -----------------------------------------------------------
def _new_york_ns(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(event_ts=df["event_ts"].dt.tz_convert("America/New_York")
                     .astype("datetime64[ns, America/New_York]"))


def test_T01_a_new_york_hour_is_stored_in_utc_and_later_hours_do_not_depend_on_it(tmp_path):
    """An hour written by pandas in America/New_York (ns, tz-aware, correct instants) used to
    keep that zone in its raw partition: its features and those of every later hour came out
    empty and every later label ingestion failed with a TypeError. Right value: stored as
    timestamp[us, UTC]; its features and a later clean hour's equal the all-UTC world's; the
    next label day ingests."""
    utc = _world(tmp_path / "utc")
    ny = _world(tmp_path / "ny", {1: _new_york_ns})
    assert str(pq.read_schema(ny.landing_events_file(HS[1])).field("event_ts").type) == \
        "timestamp[ns, tz=America/New_York]"
    for p in (utc, ny):
        _ingest_all(p)
    assert _raw_schema(ny, HS[1]).field("event_ts").type == pa.timestamp("us", tz="UTC")
    for h in (HS[1], HS[3]):
        got, want = _features(ny, h), _features(utc, h)
        assert len(got) == 6
        pd.testing.assert_frame_equal(got, want)
    assert _features(ny, HS[3])["card_tx_count_24h"].iloc[0] == 18  # the NY hour counts
    day = START + timedelta(days=2)
    labels = pd.DataFrame({"event_id": [100, 101, 300], "label": [1, 0, 0],
                           "label_ts": pd.DatetimeIndex([day] * 3).astype("datetime64[us, UTC]")})
    labels.to_parquet(ny.landing_labels_file(day), index=False)
    valid, quarantined = ingest_labels(ny, SPEC, [day], NOW)
    assert quarantined.empty and sorted(valid[day]["event_id"].to_pylist()) == [100, 101, 300]


def test_T02_card_id_as_text_does_not_turn_card_id_into_a_string_later(tmp_path):
    """One hour whose card_id arrived as text used to make card_id a string in every later
    partition (then /entities/card_id/{id} answered 404 for every card). Right value: canonical
    ASCII digits are stored as the spec's int64; anything else is quarantined naming the
    column; later features keep int64 card ids."""
    def as_text(df):
        df = df.astype({"card_id": "str"})
        df.loc[[2, 3, 4], "card_id"] = ["007", "٧", " 7"]  # not canonical: never alias card 7
        return df
    paths = _world(tmp_path, {1: as_text})
    valid, quarantined = ingest_events(paths, SPEC, [HS[1]], NOW)
    assert valid[HS[1]]["card_id"].type == "int64" and valid[HS[1]]["card_id"].to_pylist() == [7] * 3
    assert sorted(quarantined["row"]) == [2, 3, 4]
    assert quarantined["reason"].str.contains("card_id: not an integer").all()
    _ingest_all(paths)
    for h in HS:
        assert _raw_schema(paths, h).field("card_id").type == pa.int64()
    assert _features(paths, HS[3])["card_id"].dtype == "int64"


@pytest.mark.parametrize("case,writer,column,stored", [
    ("int32 ids", lambda d: d.astype({"card_id": "int32", "event_id": "int32"}), "card_id",
     pa.int64()),
    ("uint ids", lambda d: d.astype({"merchant_id": "uint16"}), "merchant_id", pa.int64()),
    ("dictionary", lambda d: d.astype({"country": "category"}), "country", pa.large_string()),
    ("decimal amount", lambda d: d.assign(amount=[Decimal("12.34")] * len(d)), "amount",
     pa.float64()),
    ("seconds", lambda d: d.assign(event_ts=d["event_ts"].astype("datetime64[s, UTC]")),
     "event_ts", pa.timestamp("us", tz="UTC")),
    ("all-null device", lambda d: d.assign(device=None), "device", pa.large_string()),
])
def test_T03_each_type_family_is_stored_in_its_one_canonical_type(tmp_path, case, writer,
                                                                   column, stored):
    paths = _world(tmp_path, {1: writer})
    assert not _ingest_all(paths)
    assert _raw_schema(paths, HS[1]).field(column).type == stored == \
        _raw_schema(paths, HS[0]).field(column).type, case


def test_T04_ns_timestamps_with_sub_microsecond_digits_are_floored_and_counted(tmp_path):
    """Used to raise an Arrow cast error naming neither file nor column (retried twice).
    Decision: floored to the microsecond (window membership cannot change: windows are
    µs-aligned), counted in a note naming file and column (raw_events metadata + warning)."""
    def ns(df):
        ts = df["event_ts"].astype("datetime64[ns, UTC]")
        return df.assign(event_ts=ts + pd.to_timedelta([1, 0, 999, 0, 0, 5], unit="ns"))
    paths = _world(tmp_path, {1: ns})
    notes = _ingest_all(paths)
    assert notes == ["landing/events/2026-07-01T01.parquet: column 'event_ts': 3 value(s) with "
                     "sub-microsecond digits floored to the microsecond"]
    raw = pd.read_parquet(Catalog(paths.lake).table("raw_events").path(HS[1]))
    assert raw["event_ts"].tolist() == good_events(HS[1], n=6)["event_ts"].tolist()


@pytest.mark.parametrize("writer,match", [
    (lambda d: d.assign(amount=True),
     r"column 'amount' has type boolean \(Parquet bool\), expected a number\."),
    (lambda d: d.assign(country=1),
     r"column 'country' has type integer \(Parquet int64\), expected a string\."),
    (lambda d: d.assign(card_id=True), r"column 'card_id' has type boolean .*expected an integer"),
    (lambda d: d.assign(event_ts=d["event_ts"].dt.date),
     r"column 'event_ts' has type date \(Parquet date32\[day\]\), expected a UTC timestamp"),
    (lambda d: pa.Table.from_pandas(d, preserve_index=False).set_column(
        2, "card_id", pa.array([2**63 + 1] * len(d), pa.uint64())), r"'card_id': id out of"),
])
def test_T05_a_type_outside_its_family_is_refused_naming_file_and_column(tmp_path, writer, match):
    paths = _world(tmp_path, {1: writer})
    with pytest.raises(ContractError, match=r"landing/events/2026-07-01T01\.parquet: .*" + match):
        ingest_events(paths, SPEC, [HS[1]], NOW)


ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham",
         "Etc/GMT+12", "Europe/London"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unit=st.sampled_from(["s", "ms", "us", "ns"]), zone=st.sampled_from(ZONES),
       offsets=st.lists(st.integers(0, 3_599_999_999_999), min_size=1, max_size=8))
def test_T06_any_unit_and_zone_stores_the_same_instants_in_utc_us(tmp_path_factory, unit, zone,
                                                                  offsets):
    """Property: whatever the unit and zone, the stored value is the same instant, in
    timestamp[us, UTC], floored to the unit the writer could hold (never outside the hour)."""
    paths = DataPaths(tmp_path_factory.mktemp("prop")).ensure()
    instants = pd.DatetimeIndex([pd.Timestamp(HS[0]) + pd.Timedelta(o, "ns") for o in offsets])
    df = good_events(HS[0], n=len(offsets)).assign(
        event_ts=instants.tz_convert(zone).astype(f"datetime64[{unit}, {zone}]"))
    df.to_parquet(paths.landing_events_file(HS[0]), index=False)
    valid, quarantined = ingest_events(paths, SPEC, [HS[0]], NOW)
    got = valid[HS[0]].to_pandas().sort_values("event_id")["event_ts"]
    assert quarantined.empty and str(got.dtype) == "datetime64[us, UTC]"
    assert got.tolist() == instants.floor(pd.Timedelta(1, unit)).floor("us").tolist()


# -- item 2: event_id unique across the lake --------------------------------------------------
@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_U01_an_event_id_in_two_hour_files_ingested_by_two_runs_is_kept_once(tmp_path, order):
    """Used to be detected only inside one run. Right value: the copy ingested later (in any
    run order) is quarantined naming the landing file that holds the kept one; a rerun of
    either hour keeps it that way."""
    paths = _world(tmp_path, {1: lambda d: d.assign(event_id=[5, *range(101, 106)])})
    first, second = (HS[i] for i in order)
    _ingest_all(paths, [first])
    valid, quarantined = ingest_events(paths, SPEC, [second], NOW)
    kept = paths.landing_events_file(first).relative_to(paths.root)
    assert 5 not in valid[second]["event_id"].to_pylist() and len(quarantined) == 1
    assert quarantined["reason"][0] == f"duplicate event_id, first seen in {kept}"
    assert quarantined["source"][0] == str(paths.landing_events_file(second).relative_to(paths.root))
    write_parquet_atomic(valid[second], Catalog(paths.lake).table("raw_events").path(second))
    _ingest_all(paths, [first, second])  # reruns: not their own duplicates
    lake = Catalog(paths.lake).table("raw_events").read()
    assert (lake["event_id"] == 5).sum() == 1 and len(lake) == 11


# -- item 3: accepting a corrected re-delivery ------------------------------------------------
def test_R01_accepting_a_redelivered_file_is_appended_and_audited(tmp_path):
    paths = _world(tmp_path)
    registry = Registry(paths.control_db)
    landing = paths.landing_events_file(HS[0])
    rel = str(landing.relative_to(paths.root))
    assert integrity.record(paths, registry, [landing], "ingest") == []
    old = registry.landing_checksums([rel])[rel]["sha256"]
    good_events(HS[0], n=4).to_parquet(landing, index=False)  # the corrected re-delivery
    [problem] = integrity.verify(paths, registry, [rel])
    assert "ml-assets landing accept landing/events/2026-07-01T00.parquet" in problem.describe()
    for bad, why in [("   ", "non-blank --reason"), ("../control.sqlite", "refused"),
                     ("landing/events/nope.parquet", "no such landing file")]:
        with pytest.raises(RegistryError, match=why):
            integrity.accept(paths, registry, rel if bad == "   " else bad, "alice", bad)
    cli = [sys.executable, "-m", "ml_assets.cli.main", "--data-dir", str(paths.root), "landing",
           "accept", rel, "--reason", "upstream re-sent the fixed hour", "--actor", "alice",
           "--json"]
    done = subprocess.run(cli, env=child_env(), capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    [acc] = registry.landing_acceptances(rel)
    assert (acc["old_sha256"], acc["accepted_by"], acc["reason"]) == \
        (old, "alice", "upstream re-sent the fixed hour")
    assert acc["sha256"] == integrity.sha256_file(landing) != old
    entry = registry.audit_log(1)[0]
    assert (entry["actor"], entry["action"], entry["target"]) == ("alice", "landing:accept", rel)
    assert integrity.verify(paths, registry, [rel]) == []
    assert integrity.record(paths, registry, [landing], "ingest") == []
    assert integrity.expected_checksums(paths, registry, [rel])[rel][1] == "acceptance"
    again = subprocess.run(cli, env=child_env(), capture_output=True, text=True, cwd=REPO)
    assert again.returncode == 1 and "nothing to accept" in again.stdout
    with registry.backend.transaction() as con, pytest.raises(Exception, match="append-only"):
        con.execute("UPDATE landing_acceptances SET sha256 = 'x'")
