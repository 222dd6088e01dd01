"""Plain names for the types a message shows a person: "number", "integer", "string",
"timestamp", "boolean" rather than ``double``, ``dtype('O')`` or ``<class 'numpy.int64'>``.

Contract refusals (landing files, the feature table, serving requests) name the type found in
these words, so whoever fixes the writer or the client need not know Arrow, numpy or pandas.
"""

from __future__ import annotations

import numbers
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow


def plain_type(dtype) -> str:
    """The plain name of a column type.

    Parameters
    ----------
    dtype : pyarrow.DataType, numpy/pandas dtype or its string (e.g. ``"int64"``, ``"O"``)

    Returns
    -------
    str
        One of "integer", "number", "boolean", "string", "timestamp", "date", "time",
        "duration", "binary", "list", "object", "null", "category" or "text or mixed values"
        (a pandas object column); the given type as text when none fits.
    """
    if isinstance(dtype, pyarrow.DataType):
        return _plain_arrow(dtype)
    try:
        dtype = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return str(dtype)
    api = pd.api.types
    if api.is_object_dtype(dtype):  # pandas' catch-all: strings, or values of several types
        return "text or mixed values"
    checks = (("boolean", api.is_bool_dtype), ("integer", api.is_integer_dtype),
              ("number", api.is_numeric_dtype), ("timestamp", api.is_datetime64_any_dtype),
              ("duration", api.is_timedelta64_dtype), ("string", api.is_string_dtype),
              ("category", lambda d: isinstance(d, pd.CategoricalDtype)))
    return next((name for name, is_kind in checks if is_kind(dtype)), str(dtype))


def _plain_arrow(t: pyarrow.DataType) -> str:
    types = pyarrow.types
    if types.is_dictionary(t):
        return _plain_arrow(t.value_type)
    checks = (("boolean", types.is_boolean), ("integer", types.is_integer),
              ("number", lambda x: types.is_floating(x) or types.is_decimal(x)),
              ("string", lambda x: types.is_string(x) or types.is_large_string(x)
               or types.is_string_view(x)),
              ("timestamp", types.is_timestamp), ("date", types.is_date),
              ("time", types.is_time), ("duration", types.is_duration),
              ("binary", lambda x: types.is_binary(x) or types.is_large_binary(x)
               or types.is_fixed_size_binary(x)),
              ("list", lambda x: types.is_list(x) or types.is_large_list(x)),
              ("object", types.is_struct), ("null", types.is_null))
    return next((name for name, is_kind in checks if is_kind(t)), str(t))


def plain_value_type(value) -> str:
    """What a single value is, with its article, for "must be a number, got ..." messages.

    Parameters
    ----------
    value : object
        A parsed JSON value, or a numpy/pandas scalar from an in-process caller.

    Returns
    -------
    str
        "true/false", "an integer", "a number", "a string", "a list", "an object", "null",
        "a timestamp", else "a value of type <name>".
    """
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "true/false"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime | np.datetime64):
        return "a timestamp"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a value of type {type(value).__name__}"
