"""Which entities the challenger acts on during a staged rollout: a stable hash of the entity
(``md5(salt:entity)``, the data splits' hash family) puts each entity in a bucket, and a stage of
``p`` percent covers the buckets below ``p`` percent of ``BUCKETS`` - so a card is always in the
same arm, and the 5% arm contains the 1% arm. Batch scoring applies the rule to whole frames in
DuckDB, the serving path to one entity per request in Python; both call this module.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.lake import quiet
from ml_assets.lib.training.splits import BUCKETS, bucket, bucket_sql

PAUSED = "paused"  # the stage of a rollout stopped on a regression: the challenger acts on nobody


def pct(stage: str) -> int:
    """Percent of entities a stage covers: ``"25"`` -> 25; ``"shadow"``/``"paused"`` -> 0.

    Parameters
    ----------
    stage : str
        A rollout stage name.

    Returns
    -------
    int
        Percent (0-100).
    """
    return int(stage) if stage.isdigit() else 0


def buckets(entities: pd.Series, salt: str) -> np.ndarray:
    """Stable bucket in [0, BUCKETS) per entity; the same hash family as the data splits.

    Parameters
    ----------
    entities : Series, shape (n_entities,)
        Entity key values.
    salt : str
        Hash salt.

    Returns
    -------
    ndarray of int, shape (n_entities,)
    """
    con = quiet(duckdb.connect())
    con.register("ents", pd.DataFrame({"e": entities.to_numpy()}))
    return con.execute(f"SELECT {bucket_sql('e', salt)} AS b FROM ents").df()["b"].to_numpy()


def in_arm(bucket_values, percent: float):
    """The arm rule, written once: a bucket below ``percent`` of ``BUCKETS`` is in the
    challenger's arm, so the 5% arm contains the 1% arm.

    Parameters
    ----------
    bucket_values : int or ndarray of int, shape (n_entities,)
        Buckets in [0, ``BUCKETS``) from ``buckets`` or ``splits.bucket``.
    percent : float
        The stage's share of entities, in percent (0-100).

    Returns
    -------
    bool or ndarray of bool, shape (n_entities,)
        True where the challenger's decision acts.
    """
    return bucket_values < percent / 100 * BUCKETS


def in_challenger_arm(entities: pd.Series, percent: float, salt: str) -> np.ndarray:
    """Per entity (vectorized in DuckDB): is it in the challenger's arm at ``percent``?

    Parameters
    ----------
    entities : Series, shape (n_entities,)
        Entity keys (the spec's first entity key).
    percent : float
        Stage share in percent (0-100).
    salt : str
        The rollout's hash salt (``RolloutConfig.salt``, kept in the rollout state).

    Returns
    -------
    ndarray of bool, shape (n_entities,)
    """
    return in_arm(buckets(entities, salt), percent)


def entity_in_challenger_arm(entity: object, percent: float, salt: str) -> bool:
    """``in_challenger_arm`` for one entity in pure Python (the serving path, per request).

    Parameters
    ----------
    entity : object
        One entity key value.
    percent : float
        Stage share in percent (0-100).
    salt : str
        The rollout's hash salt.

    Returns
    -------
    bool
        The same answer ``in_challenger_arm`` gives for that entity.
    """
    return bool(in_arm(bucket(entity, salt), percent))


def entity_key(spec: DatasetSpec) -> str:
    """The column whose value decides the arm: the spec's first entity key.

    Parameters
    ----------
    spec : DatasetSpec

    Returns
    -------
    str
    """
    return spec.entity_keys[0]


def acting_share(st: dict | None, challenger: str | None) -> float:
    """Percent of entities on which the challenger's decision acts, from a rollout state.

    Parameters
    ----------
    st : dict or None
        The rollout state (``state``), as stored in the control plane.
    challenger : str or None
        The current ``challenger`` alias.

    Returns
    -------
    float
        The stage's percent (0-100); 0 in shadow, paused, at 100 (promoted: the challenger is
        champion by then) or when the state belongs to another version.
    """
    if not st or not challenger or st.get("version") != challenger:
        return 0.0
    stage = st.get("stage", "shadow")
    return 0.0 if stage in ("shadow", PAUSED, "100") else float(pct(stage))


def arm_salt(st: dict | None, spec: DatasetSpec) -> str:
    """The salt the running rollout hashes with (kept in its state), else the spec's.

    Parameters
    ----------
    st : dict or None
        The rollout state.
    spec : DatasetSpec
        Gives the fallback, ``spec.rollout.salt``.

    Returns
    -------
    str
    """
    return (st or {}).get("salt", spec.rollout.salt)
