"""Hash splits: same row, same split, forever - across added data, processes and libraries."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.lib.training.splits import BUCKETS, assign_splits

SALT, FRACTIONS = "splits-v1", (0.7, 0.15)


def independent_split(event_id) -> str:
    """The documented rule, computed with hashlib instead of DuckDB."""
    digest = hashlib.md5(f"{SALT}:{event_id}".encode(), usedforsecurity=False).hexdigest()
    bucket = int(digest[:8], 16) % BUCKETS
    return "train" if bucket < 7000 else "valid" if bucket < 8500 else "test"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 10**12), min_size=1, max_size=200, unique=True),
       st.lists(st.integers(1, 10**12), max_size=200))
def test_split_is_a_pure_function_of_the_id(ids, more):
    first = assign_splits(pd.Series(ids), SALT, FRACTIONS)
    grown = assign_splits(pd.Series(ids + [m for m in more if m not in ids]), SALT, FRACTIONS)
    assert first.tolist() == grown.iloc[: len(ids)].tolist()
    assert first.tolist() == [independent_split(i) for i in ids]


def test_string_ids_split_the_same_way():
    ids = pd.Series(["t-1", "t-2", "abc"], dtype="str")
    assert assign_splits(ids, SALT, FRACTIONS).tolist() == [independent_split(i) for i in ids]


def test_fractions_are_respected_on_many_rows():
    split = assign_splits(pd.Series(np.arange(200_000)), SALT, FRACTIONS)
    shares = split.value_counts(normalize=True)
    assert abs(shares["train"] - 0.70) < 0.01 and abs(shares["valid"] - 0.15) < 0.01


def test_same_split_in_a_separate_process():
    ids = list(range(1, 2001))
    code = ("import json, sys, pandas as pd; from ml_assets.lib.training.splits import assign_splits; "
            f"print(json.dumps(assign_splits(pd.Series({ids}), {SALT!r}, {FRACTIONS}).tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == assign_splits(pd.Series(ids), SALT, FRACTIONS).tolist()


def test_a_new_salt_reshuffles():
    ids = pd.Series(np.arange(1000))
    assert (assign_splits(ids, "other", FRACTIONS) != assign_splits(ids, SALT, FRACTIONS)).mean() > 0.3
