"""``ml-assets export mlflow``: mirror the registry into an MLflow tracking/registry URI."""

import json
import os
import subprocess
import sys

from ml_assets.cli.output import emit
from ml_assets.lib.core.workspace import Workspace


def export_env(environ: dict[str, str]) -> dict[str, str]:
    """The child's environment: the caller's, with MLflow telemetry off unless set.

    Parameters
    ----------
    environ : dict
        The parent's environment (not modified).

    Returns
    -------
    dict
        A copy with ``MLFLOW_DISABLE_TELEMETRY=true`` when the caller did not choose.
    """
    return {"MLFLOW_DISABLE_TELEMETRY": "true", **environ}


def cmd_export(args, ws: Workspace) -> int:
    """Run ``python -m ml_assets.export`` in a child process and report its result.

    Returns
    -------
    int
        0 when exported (or already up to date), 1 when the export refused or failed.
    """
    # The CLI loads every spec with load_spec, whose origin names how to load it again.
    argv = [sys.executable, "-m", "ml_assets.export", args.target,
            "--data-dir", str(ws.paths.root), "--spec", ws.spec.origin.ref,
            "--tracking-uri", args.tracking_uri]
    if args.artifact_root:
        argv += ["--artifact-root", args.artifact_root]
    done = subprocess.run(argv, env=export_env(dict(os.environ)), capture_output=True,
                          text=True, check=False)
    lines = done.stdout.strip().splitlines()
    try:
        payload = json.loads(lines[-1])
    except (IndexError, ValueError):
        payload = {"error": f"export exited {done.returncode}: {done.stderr.strip()[-2000:]}"}

    def render(p: dict) -> None:
        if "error" in p:
            print(f"export refused: {p['error']}")
            return
        print(f"{p['model']} -> {p['tracking_uri']}: exported {p['exported'] or 'nothing'}, "
              f"unchanged {p['unchanged'] or 'nothing'}")
        print("versions (ours -> MLflow): " + ", ".join(f"{k} -> {v}" for k, v in
                                                        p["versions"].items() if k))
        print("aliases: " + ", ".join(f"{a}@{v}" for a, v in sorted(p["aliases"].items()))
              + (f" (moved: {', '.join(p['aliases_moved'])})" if p["aliases_moved"] else ""))

    emit(payload, args.json, render)
    return 0 if done.returncode == 0 and "error" not in payload else 1


def add_parsers(sub) -> None:
    """Register ``export`` on the ``ml-assets`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The top-level subparsers.
    """
    export = sub.add_parser("export", help="mirror the registry into another tool "
                                           "(mlflow: needs the `mlflow` extra)")
    export.add_argument("target", choices=["mlflow"])
    export.add_argument("--tracking-uri", default="sqlite:///mlflow.db",
                        help="MLflow tracking and registry URI (default sqlite:///mlflow.db)")
    export.add_argument("--artifact-root", help="artifact location of a new experiment "
                                                "(default: mlartifacts/ beside a sqlite store)")
    export.set_defaults(func=cmd_export)
