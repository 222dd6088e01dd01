"""Identifiers that reach SQL, and file names that reach the filesystem, are validated here
first, never used raw."""

from __future__ import annotations

import re
from pathlib import Path

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SpecError(ValueError):
    """A dataset spec, feature definition or config value is invalid. The message names it."""


def check_identifier(value: object, what: str) -> str:
    """``value`` if it is a safe SQL identifier: ``[a-z_][a-z0-9_]*``, at most 63 characters.

    Parameters
    ----------
    value : object
        The candidate (a column, table or feature name).
    what : str
        What it names, for the error (``"entity key"``).

    Raises
    ------
    SpecError
        Not a string, or not matching the pattern.
    """
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise SpecError(
            f"{what} {value!r} is not a valid identifier: use lowercase letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)"
        )
    return value


def quote(identifier: str) -> str:
    """Quote an already-validated identifier for DuckDB.

    Parameters
    ----------
    identifier : str
        Passed ``check_identifier`` (so it holds no ``"`` to escape).
    """
    return f'"{identifier}"'


class UnsafePath(SpecError):
    """A file name from configuration, a sensor, a spec, the control plane or a request would
    leave the directory it belongs to (or cannot be a file name at all). The message names it."""


_MAX_NAME_BYTES = 255  # one path component on every common filesystem


def confined(base: Path, name: object, what: str, nested: bool = False) -> Path:
    """``base / name``, refused unless it stays inside ``base``.

    Every file name that arrives from outside the code (run config, a sensor cursor, a spec,
    a control-plane row, a request) goes through here before it touches the filesystem.

    Parameters
    ----------
    base : Path
        The directory the name belongs to (e.g. ``landing/microbatch``).
    name : str
        The name as given: a file name, or with ``nested`` a relative path with ``/``.
    what : str
        What the name is, for the error (``"microbatch file"``, ``"artifact_path"``).
    nested : bool, default False
        Allow sub-directories (``a/b.parquet``); ``..`` is refused either way.

    Returns
    -------
    Path
        ``base / name`` (not resolved, so relative paths computed from it stay as they were).

    Raises
    ------
    UnsafePath
        For a non-string or empty name, NUL or other control characters, a backslash, an
        absolute path, a ``..`` component, a ``/`` without ``nested``, a component over 255
        bytes, or a name whose resolved path (symlinks followed) lies outside ``base``.
    """
    def refuse(why: str) -> UnsafePath:
        return UnsafePath(f"{what} {name!r} refused: {why} (it must stay inside {base})")

    if not isinstance(name, str) or not name:
        raise refuse("not a non-empty file name")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise refuse("holds NUL or control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise refuse("is not valid UTF-8") from None
    if "\\" in name:  # a Windows separator: never a legitimate part of our names
        raise refuse("holds a backslash")
    if name.startswith("/"):
        raise refuse("is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise refuse("names a directory, not a file")
    if ".." in parts:
        raise refuse("climbs out with '..'")
    if len(parts) > 1 and not nested:
        raise refuse("holds a '/'; only a bare file name is allowed here")
    if any(len(p.encode("utf-8")) > _MAX_NAME_BYTES for p in parts):
        raise refuse(f"has a component over {_MAX_NAME_BYTES} bytes")
    path = base.joinpath(*parts)
    if not path.resolve().is_relative_to(base.resolve()):  # a symlink pointing out
        raise refuse("resolves outside its directory (symlink)")
    return path
