"""Identifiers that reach SQL are validated here first, never interpolated raw."""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SpecError(ValueError):
    """A dataset spec, feature definition or config value is invalid. The message names it."""


def check_identifier(value: object, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise SpecError(
            f"{what} {value!r} is not a valid identifier: use lowercase letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)"
        )
    return value


def quote(identifier: str) -> str:
    """Quote an already-validated identifier for DuckDB."""
    return f'"{identifier}"'
