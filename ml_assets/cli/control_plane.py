"""``ml-assets control``: the control plane's own care - ``verify``, ``backup FILE``,
``restore FILE`` and ``sign``. A damaged control plane is refused everywhere else; these are the
commands that get it back (see docs/reliability.md, "Control-plane integrity")."""

from pathlib import Path

from ml_assets.cli.output import control_result
from ml_assets.lib.core.artifacts import sha256_file
from ml_assets.lib.core.registry import RegistryError, integrity
from ml_assets.lib.core.workspace import Workspace


def cmd_verify(args, ws: Workspace) -> int:
    """``control verify``: every open-time check (file, WAL, integrity, audit chain, head)."""
    def act() -> dict:
        registry = ws.registry
        return {"control_plane": registry.backend.label, "audit_head": registry.audit_head,
                "integrity": "ok"}

    return control_result(args.json, act)


def _sqlite_only(ws: Workspace, command: str) -> None:
    """Refuse ``command`` for a PostgreSQL control plane: its database server owns backups."""
    if ws.control_url:
        raise RegistryError(f"`control {command}` copies control.sqlite; the control plane is "
                            f"on PostgreSQL ($ML_ASSETS_CONTROL_URL): use pg_dump/pg_restore")


def cmd_backup(args, ws: Workspace) -> int:
    """``control backup FILE``: an online, verified copy (writers may keep working)."""
    def act() -> dict:
        _sqlite_only(ws, "backup")
        ws.registry  # noqa: B018 - refuse to back up a control plane that fails its checks
        return integrity.backup(ws.paths.control_db, Path(args.file))

    return control_result(args.json, act)


def cmd_restore(args, ws: Workspace) -> int:
    """``control restore FILE``: replace a damaged control plane by a verified backup, audited.
    A control plane that passes its checks is only replaced with ``--force``."""
    def act() -> dict:
        _sqlite_only(ws, "restore")
        db = ws.paths.control_db
        try:
            ws.open_registry_unkeyed()
            replaced = "a healthy control plane"
        except RegistryError as exc:
            replaced = str(exc)
        else:
            if not args.force:
                raise RegistryError(f"{db} passes its checks; restoring {args.file} would discard "
                                    "every change since that backup. Add --force to do it anyway")
        restored = integrity.restore(Path(args.file), db)
        ws.open_registry_unkeyed().record_event(args.actor, "control:restore", restored["file"],
                                                args.reason, {**restored, "replaced": replaced[:500]})
        return restored

    return control_result(args.json, act)


def cmd_sign(args, ws: Workspace) -> int:
    """``control sign``: sign every registered version whose artifact and row verify, with the
    key in ``$ML_ASSETS_SIGNING_KEY`` (after that, unsigned versions are refused)."""
    root = ws.paths.root.resolve()

    def on_disk(rel: str) -> str | None:
        path = (root / rel).resolve()
        inside = path.is_relative_to(ws.paths.artifacts.resolve())
        return sha256_file(path) if inside and path.is_file() else None

    return control_result(args.json, lambda: {
        "signed": ws.registry.sign_models(args.actor, on_disk)})


def add_parsers(sub, actor: str) -> None:
    """Register ``control verify|backup|restore|sign`` on the ``ml-assets`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subparsers.
    actor : str
        Default ``--actor`` for the audit log (``$USER``).
    """
    control = sub.add_parser("control", help="verify, back up, restore or sign the control plane")
    verbs = control.add_subparsers(dest="verb", required=True)
    verify = verbs.add_parser("verify", help="run every integrity check of the control plane")
    verify.set_defaults(func=cmd_verify)
    backup = verbs.add_parser("backup", help="write a verified online copy to FILE")
    backup.add_argument("file")
    backup.set_defaults(func=cmd_backup)
    restore = verbs.add_parser("restore", help="replace a damaged control plane by FILE (audited)")
    restore.add_argument("file")
    restore.add_argument("--force", action="store_true",
                         help="replace a control plane that passes its checks too")
    restore.add_argument("--reason", default="restored from backup")
    restore.set_defaults(func=cmd_restore)
    sign = verbs.add_parser("sign", help="sign verified model versions with the signing key")
    sign.set_defaults(func=cmd_sign)
    for p in (restore, sign):
        p.add_argument("--actor", default=actor, help="who (default $USER), for the audit log")
    for p in (verify, backup, restore, sign):
        p.add_argument("--json", action="store_true", help="machine-readable output")
