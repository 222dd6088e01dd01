"""The one Markdown-table builder: documents, Dagster metadata summaries, the success-criteria
card and the benchmark report all render tables through ``table`` so a cell is escaped and a
number or a missing value is written the same way everywhere."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MISSING = "-"


def cell(value: object) -> str:
    """One table cell as text.

    Parameters
    ----------
    value : object
        A float is written with 4 significant digits (``0.1235``, ``1.235e+04``); ``None`` and
        NaN are written as ``-`` (unknown); anything else via ``str``.

    Returns
    -------
    str
        The cell text with ``|`` escaped and newlines folded to spaces, so a value can never
        break the row.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        text = MISSING
    elif isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *,
          empty: str | None = None) -> str:
    """A GitHub-flavoured Markdown table.

    Parameters
    ----------
    columns : sequence of str, length n_columns
        Header labels, written as given (not escaped: they are code, not data).
    rows : iterable of sequences, each of length n_columns
        Cell values, each rendered by ``cell``. A caller that wants its own number format
        passes the already-formatted string.
    empty : str, optional
        Returned instead of a header-only table when ``rows`` is empty; by default the header
        is returned alone.

    Returns
    -------
    str
        The table, one line per row, without a trailing newline.
    """
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    if not body and empty is not None:
        return empty
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *body])
