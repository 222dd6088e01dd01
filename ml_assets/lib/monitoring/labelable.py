"""Which events a label is still expected for, and label coverage over those events.

Some events are never labelled by design (e.g. cancelled before their outcome exists). Counting
them would hold a day's label coverage below ``min_label_coverage`` forever, so the day would
stay ``pending`` and never be evaluated. A dataset spec declares them in two ways:

- ``unlabelable_when``: conditions on the raw event's attribute columns, e.g.
  ``(("status", "==", "cancelled"),)``. All conditions of the tuple must hold (AND); ``in``
  gives alternatives on one column. A null never equals a value: ``==``, ``in`` and the
  comparisons are false on null, ``!=`` is true on null.
- ``label_timeout_days``: an event still without a label this many days after its event time,
  as seen from the label horizon, will not get one.

An event with a known label always counts (a late label is still a label), so label coverage
``labelled / labelable`` never exceeds 1. Unlabelled events are never negatives anywhere: the
metrics use known labels only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from ml_assets.lib.core.identifiers import quote
from ml_assets.lib.core.policies import check_limit, is_number

# Comparisons apply to numeric attributes only; is_null/not_null take None as their value.
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "is_null", "not_null")
_SQL = {"==": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def check_unlabelable_when(conditions: object, kinds: Mapping[str, str],
                           nullable: set[str]) -> None:
    """Refuse an ``unlabelable_when`` declaration that could not be evaluated as meant.

    Parameters
    ----------
    conditions : object
        The spec's ``unlabelable_when``: a tuple of ``(column, operator, value)`` tuples.
    kinds : mapping of str to {"numeric", "categorical"}
        The spec's attributes (raw event columns besides id, timestamp and entity keys).
    nullable : set of str
        The attributes that may be null.

    Raises
    ------
    SpecError
        Naming ``unlabelable_when`` (or ``unlabelable_when[i]``): not a tuple of 3-tuples, a
        column that is not an attribute, an operator outside ``OPERATORS``, a comparison on a
        categorical attribute, ``is_null`` on a non-nullable attribute, or a value of the wrong
        type for the attribute (numbers for numeric, strings for categorical, a non-empty tuple
        of them for ``in``, None for ``is_null``/``not_null``).
    """
    check_limit(isinstance(conditions, tuple), "unlabelable_when", conditions,
                "a tuple of (column, operator, value) conditions")
    for i, cond in enumerate(conditions):
        name = f"unlabelable_when[{i}]"
        check_limit(isinstance(cond, tuple) and len(cond) == 3, name, cond,
                    "a (column, operator, value) tuple")
        column, op, value = cond
        check_limit(isinstance(column, str) and column in kinds, name, cond,
                    f"column {column!r} is not an attribute (one of {sorted(kinds)})")
        check_limit(op in OPERATORS, name, cond, f"operator {op!r} is not one of {OPERATORS}")
        numeric = kinds[column] == "numeric"
        kind = "a number" if numeric else "a string"
        if op in ("is_null", "not_null"):
            check_limit(value is None, name, cond, f"{op} takes None as its value")
            check_limit(op == "not_null" or column in nullable, name, cond,
                        f"attribute {column!r} is not nullable, so is_null never holds")
        elif op == "in":
            check_limit(isinstance(value, tuple) and bool(value)
                        and all(_fits(v, numeric) for v in value),
                        name, cond, f"'in' takes a non-empty tuple, each {kind}")
        else:
            check_limit(numeric or op in ("==", "!="), name, cond,
                        f"{op} compares numeric attributes only; {column!r} is categorical")
            check_limit(_fits(value, numeric), name, cond, f"{column!r} is compared with {kind}")


def _fits(value: object, numeric: bool) -> bool:
    return is_number(value) if numeric else isinstance(value, str)


def unlabelable_sql(conditions: tuple, alias: str) -> tuple[str, dict]:
    """The DuckDB predicate of a validated ``unlabelable_when``, values bound as parameters.

    Parameters
    ----------
    conditions : tuple of (column, operator, value)
        Passed ``check_unlabelable_when`` (so every column is a safe identifier).
    alias : str
        Table alias the columns are read from.

    Returns
    -------
    predicate : str
        True where every condition holds; may be NULL on nulls (wrap it in ``COALESCE``).
    params : dict
        Named parameters (``u<i>``, ``u<i>_<j>``) the predicate uses.
    """
    terms, params = [], {}
    for i, (column, op, value) in enumerate(conditions):
        col = f"{alias}.{quote(column)}"
        if op == "is_null":
            terms.append(f"{col} IS NULL")
        elif op == "not_null":
            terms.append(f"{col} IS NOT NULL")
        elif op == "in":
            names = [f"u{i}_{j}" for j in range(len(value))]
            params |= dict(zip(names, value, strict=True))
            terms.append(f"{col} IN ({', '.join('$' + n for n in names)})")
        else:
            params[f"u{i}"] = value
            terms.append(f"{col} IS DISTINCT FROM $u{i}" if op == "!="
                         else f"{col} {_SQL[op]} $u{i}")
    return " AND ".join(f"({t})" for t in terms) or "FALSE", params


def labelable_mask(label: np.ndarray, event_ts: pd.Series, declared: np.ndarray | None,
                   horizon: datetime | None, timeout_days: int | None) -> np.ndarray:
    """Per event: whether it counts towards label coverage.

    An event counts when its label is known, or when a label is still expected: it matches no
    ``unlabelable_when`` declaration and, with ``timeout_days``, its event time plus the timeout
    is still after ``horizon``. The timeout runs against the label horizon, never the wall
    clock: a label feed that stalls does not time events out.

    Parameters
    ----------
    label : ndarray of float, shape (n_rows,)
        1/0, NaN where unknown at ``horizon``.
    event_ts : Series of tz-aware datetime, shape (n_rows,)
    declared : ndarray of bool, shape (n_rows,), optional
        Rows matching ``unlabelable_when``; None when the spec declares none.
    horizon : datetime or None
        Labels known up to here (UTC); None times nothing out.
    timeout_days : int or None
        The spec's ``label_timeout_days`` (days).

    Returns
    -------
    ndarray of bool, shape (n_rows,)
    """
    known = ~np.isnan(np.asarray(label, dtype="float64"))
    not_expected = np.zeros(len(known), bool) if declared is None else np.asarray(declared, bool)
    if timeout_days is not None and horizon is not None:
        timed_out = pd.Series(event_ts) + pd.Timedelta(days=timeout_days) <= pd.Timestamp(horizon)
        not_expected = not_expected | timed_out.to_numpy(dtype=bool)
    return known | ~not_expected


def label_coverage(label: np.ndarray, labelable: np.ndarray | None = None) -> dict:
    """Label coverage of a set of events over the events a label is expected for.

    Parameters
    ----------
    label : ndarray of float, shape (n_rows,)
        1/0, NaN where unknown.
    labelable : ndarray of bool, shape (n_rows,), optional
        ``labelable_mask`` (the ``labelable`` column of ``scored_events.load_scores``); None
        counts every row.

    Returns
    -------
    dict
        ``label_coverage`` (0-1; NaN when no event is labelable - a day without events, or
        only cancelled ones: nothing to wait for, so it turns final once mature),
        ``labelable_events`` and ``unlabelable_events`` (rows).
    """
    known = ~np.isnan(np.asarray(label, dtype="float64"))
    expected = np.ones(len(known), bool) if labelable is None else np.asarray(labelable, bool)
    n = int(expected.sum())
    return {"label_coverage": float((known & expected).sum() / n) if n else float("nan"),
            "labelable_events": n, "unlabelable_events": int(len(known) - n)}
