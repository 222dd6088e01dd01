"""Feature declarations: the one definition that training, batch scoring and serving share.

A declaration says *what* a feature is; ``feature_sql`` compiles it to DuckDB SQL and
``online_features`` evaluates it per request. Every window is strictly before the event
time: an event at ``t`` sees history in ``[t - window, t)`` and labels with ``label_ts < t``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import timedelta

from ml_assets.lib.core.identifiers import SpecError, check_identifier

_WINDOW = re.compile(r"^(\d{1,4})(m|h|d)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
WINDOW_AGGS = ("count", "sum", "mean", "max", "distinct")
LABEL_AGGS = ("positives", "count", "rate")
TIME_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400}  # seconds per unit
UNKNOWN_CATEGORY = "__unknown__"
# HistGradientBoosting bins a categorical feature into at most 255 categories; the unknown
# bucket takes one.
MAX_VOCABULARY = 254


def parse_window(window: str, feature: str) -> timedelta:
    """A window such as ``"1h"``, ``"7d"`` or ``"30m"`` as a ``timedelta``.

    Parameters
    ----------
    window : str
        A positive integer and a unit m/h/d.
    feature : str
        Name of the feature declaring it (for the message).

    Returns
    -------
    timedelta

    Raises
    ------
    SpecError
        The window is not a positive number with a known unit.
    """
    match = _WINDOW.match(window) if isinstance(window, str) else None
    if not match or int(match.group(1)) == 0:
        raise SpecError(
            f"feature {feature!r}: window {window!r} is invalid; use a positive number and a "
            "unit m/h/d, e.g. '1h', '24h', '7d', '30d'"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _entity_tuple(entity: str | tuple[str, ...]) -> tuple[str, ...]:
    return (entity,) if isinstance(entity, str) else tuple(entity)


@dataclass(frozen=True)
class Numeric:
    """A raw numeric attribute of the event itself, passed through."""

    name: str
    column: str


@dataclass(frozen=True)
class Categorical:
    """A categorical attribute encoded against a fixed vocabulary; anything else (and null)
    falls into an explicit unknown bucket so a new value never breaks scoring."""

    name: str
    column: str
    vocabulary: tuple[str, ...]


@dataclass(frozen=True)
class WindowAgg:
    """count/sum/mean/max/distinct of ``column`` over the entity's events in ``[t-window, t)``."""

    name: str
    entity: str | tuple[str, ...]
    agg: str
    window: str
    column: str | None = None

    @property
    def entities(self) -> tuple[str, ...]:
        """The entity key columns aggregated over."""
        return _entity_tuple(self.entity)


@dataclass(frozen=True)
class TimeSincePrevious:
    """Time since the entity's previous event within ``within``, in ``unit`` (``"s"``,
    ``"min"``, ``"h"`` or ``"d"``); null when there is none."""

    name: str
    entity: str | tuple[str, ...]
    within: str = "30d"
    unit: str = "s"

    @property
    def entities(self) -> tuple[str, ...]:
        """The entity key columns aggregated over."""
        return _entity_tuple(self.entity)

    @property
    def unit_us(self) -> int:
        """Microseconds per ``unit``: every execution divides the gap in microseconds by it."""
        return TIME_UNITS[self.unit] * 1_000_000


@dataclass(frozen=True)
class LabelAgg:
    """Labels of the entity's past events that became known in ``[t-window, t)`` (by label_ts):
    ``positives`` (sum of labels), ``count`` (labels known) or ``rate`` (null when none)."""

    name: str
    entity: str | tuple[str, ...]
    agg: str
    window: str

    @property
    def entities(self) -> tuple[str, ...]:
        """The entity key columns aggregated over."""
        return _entity_tuple(self.entity)


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``: each an earlier feature, a numeric column or a number
    constant (e.g. ``denominator=1000.0``); null on a zero or null denominator or a null
    numerator. A non-finite constant or a zero constant denominator is refused (``SpecError``)."""

    name: str
    numerator: str | float
    denominator: str | float

    def __post_init__(self):
        for role, part in (("numerator", self.numerator), ("denominator", self.denominator)):
            if is_constant(part) and not math.isfinite(part):
                raise SpecError(f"feature {self.name!r}: {role} {part!r} is not a finite number")
        if is_constant(self.denominator) and self.denominator == 0:
            raise SpecError(f"feature {self.name!r}: denominator is the constant 0; a division "
                            "by zero is null for every event")


def is_constant(part) -> bool:
    """Whether a ``Ratio`` part is a number constant (not a feature or column name).

    Parameters
    ----------
    part : str or float

    Returns
    -------
    bool
        True for an int or float (a bool is neither).
    """
    return isinstance(part, int | float) and not isinstance(part, bool)


FeatureDef = Numeric | Categorical | WindowAgg | TimeSincePrevious | LabelAgg | Ratio


# Fields added after models recorded fingerprints: left out at their default, so a declaration
# not using them keeps its fingerprint and its registered models stay scorable.
_LATER_DEFAULTS = {"unit": "s"}


def feature_fingerprint(feature: FeatureDef) -> str:
    """Hash of one declaration: two features with the same fingerprint compute the same thing.

    Parameters
    ----------
    feature : FeatureDef

    Returns
    -------
    str
        First 16 hex chars of the SHA-256 of its type and fields.
    """
    fields = {k: v for k, v in asdict(feature).items()
              if not (k in _LATER_DEFAULTS and v == _LATER_DEFAULTS[k])}
    payload = json.dumps({"type": type(feature).__name__, **fields}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def feature_schema_version(features: tuple[FeatureDef, ...]) -> str:
    """Fingerprint of a feature list: names and declarations, in order.

    Parameters
    ----------
    features : tuple of FeatureDef

    Returns
    -------
    str
        16 hex chars; changes when any feature, its name or the order changes.
    """
    payload = json.dumps([[f.name, feature_fingerprint(f)] for f in features])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def validate_features(
    features: tuple[FeatureDef, ...],
    numeric_columns: set[str],
    categorical_columns: set[str],
    entity_columns: set[str],
) -> None:
    """Fail with a message naming the feature and the field that is wrong.

    Parameters
    ----------
    features : tuple of FeatureDef
    numeric_columns, categorical_columns, entity_columns : set of str
        Event columns by kind that features may read.

    Raises
    ------
    SpecError
        A name is invalid or repeated, a column or entity is unknown or of the wrong kind, an empty
        vocabulary or one over ``MAX_VOCABULARY`` values or with repeats, an aggregation, window
        or time unit is invalid, or a ratio part is neither an earlier feature, a numeric column
        nor a number.
    """
    seen: set[str] = set()
    for f in features:
        check_identifier(getattr(f, "name", None), "feature name")
        if f.name in seen:
            raise SpecError(f"feature {f.name!r} is declared twice")
        if isinstance(f, Numeric) and f.column not in numeric_columns:
            raise SpecError(f"feature {f.name!r}: column {f.column!r} is not a numeric attribute")
        if isinstance(f, Categorical):
            if f.column not in categorical_columns | entity_columns:
                raise SpecError(f"feature {f.name!r}: column {f.column!r} is not categorical")
            if not f.vocabulary or UNKNOWN_CATEGORY in f.vocabulary:
                raise SpecError(f"feature {f.name!r}: vocabulary must be non-empty")
            if len(f.vocabulary) > MAX_VOCABULARY:
                raise SpecError(
                    f"feature {f.name!r}: vocabulary has {len(f.vocabulary)} values; at most "
                    f"{MAX_VOCABULARY} (HistGradientBoosting allows {MAX_VOCABULARY + 1} "
                    "categories, the unknown bucket included)")
            if (not all(isinstance(v, str) and v for v in f.vocabulary)
                    or len(set(f.vocabulary)) != len(f.vocabulary)):
                raise SpecError(f"feature {f.name!r}: vocabulary values must be distinct "
                                "non-empty strings (each is one category code)")
        if isinstance(f, WindowAgg | TimeSincePrevious | LabelAgg):
            for key in f.entities:
                if key not in entity_columns:
                    raise SpecError(f"feature {f.name!r}: entity {key!r} is not an entity key")
            parse_window(f.within if isinstance(f, TimeSincePrevious) else f.window, f.name)
        if isinstance(f, TimeSincePrevious) and f.unit not in TIME_UNITS:
            raise SpecError(f"feature {f.name!r}: unit {f.unit!r} is not one of {tuple(TIME_UNITS)}")
        if isinstance(f, WindowAgg):
            if f.agg not in WINDOW_AGGS:
                raise SpecError(f"feature {f.name!r}: agg {f.agg!r} is not one of {WINDOW_AGGS}")
            if f.agg != "count" and f.column not in (
                numeric_columns | categorical_columns | entity_columns
            ):
                raise SpecError(f"feature {f.name!r}: agg {f.agg!r} needs a column to aggregate")
            if f.agg in ("sum", "mean", "max") and f.column not in numeric_columns:
                raise SpecError(f"feature {f.name!r}: {f.agg} needs a numeric column")
        if isinstance(f, LabelAgg) and f.agg not in LABEL_AGGS:
            raise SpecError(f"feature {f.name!r}: agg {f.agg!r} is not one of {LABEL_AGGS}")
        if isinstance(f, Ratio):
            for part in (f.numerator, f.denominator):
                if not is_constant(part) and part not in seen and part not in numeric_columns:
                    raise SpecError(
                        f"feature {f.name!r}: {part!r} is neither an earlier feature nor a "
                        "numeric column (nor a number constant)"
                    )
        seen.add(f.name)


def max_lookback(features: tuple[FeatureDef, ...]) -> timedelta:
    """Longest window any feature looks back over.

    Parameters
    ----------
    features : tuple of FeatureDef

    Returns
    -------
    timedelta
        Zero when no feature has a window.

    Raises
    ------
    SpecError
        A window is invalid.
    """
    windows = [
        parse_window(f.within if isinstance(f, TimeSincePrevious) else f.window, f.name)
        for f in features
        if isinstance(f, WindowAgg | TimeSincePrevious | LabelAgg)
    ]
    return max(windows, default=timedelta(0))


def feature_warm_up(features: tuple[FeatureDef, ...], label_maturity: timedelta) -> timedelta:
    """How long after the data starts every feature reaches steady state.

    A window feature is warm once its window has filled. A label feature (``LabelAgg``) also
    needs the labels of its window's events, which land late: it is warm only after its window
    plus ``label_maturity`` (the age at which a day's labels count as complete). Before that its
    values drift upward as label history accumulates, so a reference or training window taken
    there differs from every later day.

    Parameters
    ----------
    features : tuple of FeatureDef
    label_maturity : timedelta
        Age after which a prediction day's labels are (nearly) complete.

    Returns
    -------
    timedelta
        Zero when no feature has a window.

    Raises
    ------
    SpecError
        A window is invalid.
    """
    spans = [max_lookback((f,)) + (label_maturity if isinstance(f, LabelAgg) else timedelta(0))
             for f in features if isinstance(f, WindowAgg | TimeSincePrevious | LabelAgg)]
    return max(spans, default=timedelta(0))
