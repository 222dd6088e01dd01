"""The one output helper of ``ml-assets``: every command prints either JSON (``--json``) or a
rendered text of the same payload, and control-plane refusals exit 1 the same way."""

import json
import sys
from collections.abc import Callable

from ml_assets.lib.core.registry import RegistryError


def emit(payload, as_json: bool, render: Callable[[object], None], indent: int | None = 2) -> None:
    """Print ``payload`` as indented JSON or through ``render``.

    Parameters
    ----------
    payload : dict or list
        What the command reports; non-JSON values (datetimes, paths) print as strings.
    as_json : bool
        The command's ``--json`` flag.
    render : callable
        Prints the human-readable form of ``payload``.
    indent : int or None, default 2
        JSON indentation; ``None`` prints one line (``serve``, whose output is read line-wise).
    """
    if as_json:
        print(json.dumps(payload, indent=indent, default=str))
    else:
        render(payload)


def control_result(as_json: bool, action: Callable[[], dict]) -> int:
    """Run a control-plane action and report it; a refusal prints why.

    Parameters
    ----------
    as_json : bool
        The command's ``--json`` flag.
    action : callable
        Returns the result fields; raises ``RegistryError`` (or a subclass) to refuse.

    Returns
    -------
    int
        Exit code: 0 done, 1 refused (JSON: ``ok`` false with the ``error``).
    """
    try:
        payload = {"ok": True, **action()}
    except RegistryError as exc:
        payload = {"ok": False, "error": str(exc)}
    if as_json or payload["ok"]:
        emit(payload, as_json, lambda p: print(", ".join(f"{k}={v}" for k, v in p.items()
                                                        if k != "ok")))
    else:
        print(f"refused: {payload['error']}", file=sys.stderr)
    return 0 if payload["ok"] else 1


def refused(message: str) -> int:
    """Print ``message`` to stderr and return exit code 1."""
    print(message, file=sys.stderr)
    return 1
