"""``python -m ml_assets.export mlflow``: the export as its own process.

``ml-assets export mlflow`` runs this in a subprocess so that MLflow's import, its global
tracking URI and its telemetry setting (``MLFLOW_DISABLE_TELEMETRY``, passed in the child's
environment) never touch the CLI's own process. Prints the result as one JSON object.
"""

import argparse
import json
import sys

from ml_assets.export.mlflow_export import ExportError, export_to_mlflow
from ml_assets.lib.core.workspace import Workspace
from ml_assets.specs.loading import load_spec


def main(argv: list[str] | None = None) -> int:
    """Parse the export's arguments, run it and print its result; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m ml_assets.export")
    parser.add_argument("target", choices=["mlflow"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--spec", required=True, help="spec reference (SpecOrigin.ref)")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--artifact-root")
    args = parser.parse_args(argv)
    ws = Workspace.open(args.data_dir, load_spec(args.spec, data_dir=args.data_dir))
    try:
        result = export_to_mlflow(ws, args.tracking_uri, args.artifact_root)
    except ExportError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
