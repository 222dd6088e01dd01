"""The period a feature's drift is judged over: a day, a calendar week or month, or the trailing
N days - or none, by declaration.

One day is the wrong unit for some features: ``day_of_week`` is constant within a day, so a
day's PSI against a reference spanning every weekday is large every day; a sparse feature needs
more than a day's rows. Each feature is compared over its period, and a period is judged only
once it is complete: its days are all in the data, it does not start before the data, and its
last day is whole (data continues after it, or reaches its last hour). An incomplete period is
reported with its PSI so far, never alarmed. The reference's clean variability is measured over
whole periods of the same kind (``reference_keys``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

OFF = "off"
_TRAILING = re.compile(r"^([1-9][0-9]{0,2})d$")


@dataclass(frozen=True)
class DriftPeriod:
    """A parsed period: ``kind`` is "day", "week" (ISO, Monday first), "month", "trailing"
    (the ``days`` days ending with the judged day) or "off" (not monitored, by declaration)."""

    kind: str
    days: int = 1

    @property
    def label(self) -> str:
        """The declaration it was parsed from ("day", "week", "month", "7d", "off")."""
        return f"{self.days}d" if self.kind == "trailing" else self.kind

    def bounds(self, day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp, bool]:
        """The period judged on ``day``: its start, its end (the end of ``day``) and whether
        ``day`` closes it (a calendar week or month is judged on its last day only).

        Parameters
        ----------
        day : Timestamp
            Midnight (UTC) of the judged day.

        Returns
        -------
        start, end : Timestamp
            The window [start, end) of rows compared.
        closes : bool
        """
        end = day + pd.Timedelta(days=1)
        if self.kind == "week":
            return day - pd.Timedelta(days=day.weekday()), end, day.weekday() == 6
        if self.kind == "month":
            return day.replace(day=1), end, end.day == 1
        return end - pd.Timedelta(days=self.days), end, True

    def reference_keys(self, ts: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray:
        """The whole period each reference row falls in, for measuring clean period-to-period
        variability; rows of periods cut by the window [lo, hi) get NaT (a partial week of
        weekends only would read as drift of ``day_of_week``).

        Parameters
        ----------
        ts : Series of datetime64, shape (n_rows,)
            Event times (UTC).
        lo, hi : Timestamp
            The reference window.

        Returns
        -------
        ndarray of datetime64[ns], shape (n_rows,)
            Start of each row's period (UTC, without a zone), NaT where the period is not
            whole within [lo, hi).
        """
        day = ts.dt.floor("D")
        if self.kind == "week":
            start = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
            end = start + pd.Timedelta(days=7)
        elif self.kind == "month":
            start = day - pd.to_timedelta(day.dt.day - 1, unit="D")
            end = start + pd.to_timedelta(start.dt.days_in_month, unit="D")
        else:  # blocks of `days` days from the window start
            width = pd.Timedelta(days=self.days)
            start = lo.floor("D") + ((day - lo.floor("D")) // width) * width
            end = start + width
        whole = (start >= lo) & (end <= hi)
        # naive UTC datetime64: a tz-aware column would become an array of Timestamp objects,
        # which np.unique sorts a thousand times slower
        return start.where(whole).dt.tz_convert(None).to_numpy("datetime64[ns]")


def parse_period(text: str) -> DriftPeriod:
    """Parse a period declaration.

    Parameters
    ----------
    text : str
        "day", "week", "month", "<N>d" (trailing N days, 1-999) or "off".

    Returns
    -------
    DriftPeriod

    Raises
    ------
    ValueError
        Anything else.
    """
    if text in ("day", "week", "month", OFF):
        return DriftPeriod(text)
    m = _TRAILING.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"drift period {text!r} is not 'day', 'week', 'month', '<N>d' "
                         "(trailing N days) or 'off'")
    return DriftPeriod("trailing", int(m.group(1)))


def day_is_whole(day: pd.Timestamp, newest_event: pd.Timestamp | None) -> bool:
    """Whether a day's data is whole: data continues after it, or reaches its last hour (a
    dataset that ends mid-day leaves a partial last day, e.g. 88 events where a day has 900).

    Parameters
    ----------
    day : Timestamp
        Midnight (UTC).
    newest_event : Timestamp or None
        The newest event time known in the lake (None: no events).
    """
    return newest_event is not None and newest_event >= day + pd.Timedelta(hours=23)
