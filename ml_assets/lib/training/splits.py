"""Hash splits: a row's split is a pure function of its id and a salt. Same row, same split,
forever - whatever else is added, whichever process or pandas version computes it."""

from __future__ import annotations

import hashlib

import duckdb
import pandas as pd

from ml_assets.lib.core.lake import quiet

BUCKETS = 10_000


def bucket_sql(id_sql: str, salt: str) -> str:
    """The stable bucket of an id as a DuckDB SQL expression.

    Parameters
    ----------
    id_sql : str
        SQL expression of the id (a column name or a cast); it is hashed as its ``VARCHAR``.
    salt : str
        Separates independent hash families (splits, rollout arms).

    Returns
    -------
    str
        An expression for md5(salt:id) -> first 32 bits -> bucket in [0, ``BUCKETS``); md5 is
        the same everywhere, so ``bucket`` computes the same value in Python.
    """
    salt_lit = "'" + salt.replace("'", "''") + ":'"
    return f"(('0x' || substr(md5({salt_lit} || CAST({id_sql} AS VARCHAR)), 1, 8))::UBIGINT % {BUCKETS})"


def bucket(id_value: object, salt: str) -> int:
    """The stable bucket of one id, computed without a database (the serving path).

    Parameters
    ----------
    id_value : object
        The id; hashed as ``str(id_value)``, which equals DuckDB's ``VARCHAR`` cast for the
        integer and string ids the specs use.
    salt : str
        As in ``bucket_sql``.

    Returns
    -------
    int
        md5(salt:id) -> first 32 bits -> bucket in [0, ``BUCKETS``), equal to ``bucket_sql``.
    """
    digest = hashlib.md5(f"{salt}:{id_value}".encode()).hexdigest()  # noqa: S324 (not security)
    return int(digest[:8], 16) % BUCKETS


def assign_splits(ids: pd.Series, salt: str, fractions: tuple[float, float]) -> pd.Series:
    """The split of each id by its stable bucket (``bucket_sql``): train, valid or test.

    Parameters
    ----------
    ids : Series, shape (n_rows,)
        Event ids.
    salt : str
        Hash salt (``ModelConfig.split_salt``).
    fractions : (float, float)
        Train and validation shares (0-1); test is the rest.

    Returns
    -------
    Series of str, aligned with ``ids``
        ``"train"``, ``"valid"`` or ``"test"``.

    Raises
    ------
    ValueError
        The fractions are not positive or do not sum below 1.
    """
    train, valid = fractions
    if not (0 < train < 1 and 0 <= valid < 1 and train + valid < 1):
        raise ValueError(f"split fractions {fractions} must be positive and sum below 1")
    con = quiet(duckdb.connect())
    con.register("ids", pd.DataFrame({"id": ids.to_numpy()}))
    buckets = con.execute(f"SELECT {bucket_sql('id', salt)} AS b FROM ids").df()["b"].to_numpy()
    t, v = int(train * BUCKETS), int((train + valid) * BUCKETS)
    out = pd.Series("test", index=ids.index, dtype="object")
    out[buckets < v] = "valid"
    out[buckets < t] = "train"
    return out.astype("str")
