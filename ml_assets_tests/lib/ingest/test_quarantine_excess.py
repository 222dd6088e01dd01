"""The quarantine gate judges a partition's bad rows against its size: one bad row of an
hour's five is a 20% share a clean source often produces; a broken source is still stopped."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_assets.lib.ingest.quarantine import MAX_QUARANTINE_SHARE, quarantine_excess


@pytest.mark.parametrize("valid, bad, blocked", [
    (4, 1, False),        # 20% of a 5-row hour: P(>=1 | 5, 2%) = 9.6%
    (0, 5, True),         # every row of the hour bad
    (70, 30, True),       # 30% of 100 rows
    (97, 3, False),       # 3% of 100 rows: a 2% source gives >= 3 a third of the time
    (9_000, 1_000, True),  # 10% of 10,000
    (9_700, 300, True),   # 3% of 10,000: p ~ 1e-10
    (10_000, 0, False), (0, 0, False),
])
def test_small_partitions_are_judged_by_their_size(valid, bad, blocked):
    excess, share, p = quarantine_excess(valid, bad)
    assert excess is blocked
    assert share == (bad / (valid + bad) if valid + bad else 0.0)


def test_the_p_value_is_the_exact_binomial_tail():
    _, _, p = quarantine_excess(4, 1)
    assert p == pytest.approx(1 - (1 - MAX_QUARANTINE_SHARE) ** 5, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20_000), st.data())
def test_a_clean_source_is_rarely_blocked(n, data):
    """Rows bad at exactly the tolerated rate: at most alpha of partitions are blocked."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    bad = rng.binomial(n, MAX_QUARANTINE_SHARE, 2_000)
    blocked = np.mean([quarantine_excess(n - b, int(b))[0] for b in bad])
    assert blocked <= 0.004  # alpha 0.001, with room for 2,000 draws' noise
