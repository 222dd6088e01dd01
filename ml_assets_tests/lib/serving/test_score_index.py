"""The serving score index (sorted NumPy arrays, binary search) answers exactly what a plain
dict of every event would: per version the event's last score row, its last row's time,
keys and source, and per entity the latest event by time (ties: the larger id)."""

from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.lib.core.catalog import BATCH_SCORES, Catalog
from ml_assets.lib.core.paths import DataPaths
from ml_assets.lib.serving.score_index import ScoreIndex, empty_score_index, load_score_index
from ml_assets.specs.fraud import FRAUD_SPEC as SPEC

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def _frame(rows: list[tuple], string_ids: bool) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["event_id", "second", "card_id", "merchant_id",
                                     "model_version", "score", "decision", "micro"])
    df["event_ts"] = [T0 + timedelta(seconds=s) for s in df.pop("second")]
    df["event_ts"] = df["event_ts"].astype("datetime64[us, UTC]")
    if string_ids:
        df["event_id"] = "e-" + df["event_id"].astype(str)
    df["card_id"] = df["card_id"].astype("Int64")  # NULL keys: spec.nullable_keys
    return df


def _reference(df: pd.DataFrame) -> tuple[dict, dict]:
    """Per event its last row's answer per version; per card its latest event."""
    events, scores = {}, {}
    for r in df.itertuples(index=False):
        events[r.event_id] = r
        scores[(r.event_id, r.model_version)] = (r.score, r.decision)
    latest = {}
    for eid, r in events.items():
        if pd.notna(r.card_id):
            best = latest.get(r.card_id)
            if best is None or (r.event_ts, eid) > (events[best].event_ts, best):
                latest[int(r.card_id)] = eid
    return {k: {"score": s, "decision": d, "event_ts": events[k[0]].event_ts.isoformat(),
                "source": "microbatch" if events[k[0]].micro else "batch"}
            for k, (s, d) in scores.items()}, latest


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5), st.none() | st.integers(0, 4),
                               st.integers(0, 3), st.sampled_from(["v1", "v2"]),
                               st.floats(0, 1), st.booleans(), st.booleans()), max_size=40),
       string_ids=st.booleans())
def test_the_index_answers_as_a_dict_of_every_event_would(rows, string_ids):
    df = _frame(rows, string_ids)
    index = ScoreIndex(SPEC, df) if len(df) else empty_score_index(SPEC)
    answers, latest = _reference(df)
    assert len(index) == df["event_id"].nunique()
    for eid in [*df["event_id"].unique().tolist(), "e-99", 99, "zz", None, 2**70, 1.5]:
        row = index.row(eid)
        for version in ("v1", "v2", "v3"):
            want = answers.get((eid, version))
            got = index.lookup(row, version) if row is not None else None
            assert got == want, (eid, version)
        if row is not None:
            assert index.event_id(row) == eid and type(index.event_id(row)) is type(eid)
            arm = events_card = df.loc[df["event_id"] == eid, "card_id"].iloc[-1]
            assert index.arm(row) == (None if pd.isna(arm) else int(events_card))
    for card in range(-1, 6):
        row = index.latest_row("card_id", card)
        assert (None if row is None else index.event_id(row)) == latest.get(card), card
    assert index.latest_row("no_such_key", 1) is None


def test_a_nullable_key_read_from_the_lake_stays_an_integer(tmp_path):
    """The rollout arm hashes the entity as text: a key read back as 7.0 would put the card
    in another arm than the batch path's 7."""
    paths = DataPaths(tmp_path)
    rows = [(1, 0, 7, 3, "v1", 0.5, True, False), (2, 1, None, 3, "v1", 0.1, False, False)]
    df = _frame(rows, string_ids=False).drop(columns="micro")
    Catalog(paths.lake).table(BATCH_SCORES).write(T0, df)
    index = load_score_index(paths, SPEC)
    assert index.arm(index.row(1)) == 7 and type(index.arm(index.row(1))) is int
    assert index.arm(index.row(2)) is None
    assert index.event_id(index.latest_row("card_id", 7)) == 1
