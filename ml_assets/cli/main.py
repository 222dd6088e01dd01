"""`ml-assets`: run the demo and inspect the control plane. Every command has ``--json``.

The global options ``--data-dir`` and ``--spec`` are parsed here, once, into the one
:class:`~ml_assets.lib.core.workspace.Workspace` every command receives. Their environment
defaults (``ML_ASSETS_DATA_DIR``, ``ML_ASSETS_SPEC``) are read here and nowhere below.
"""

import argparse
import getpass
import os
import signal
import sys
import warnings

from ml_assets.cli import control, control_plane, landing, reports, runs
from ml_assets.cli.output import refused
from ml_assets.export import cli as export_cli
from ml_assets.lib.core.identifiers import SpecError
from ml_assets.lib.core.paths import DATA_DIR_ENV, default_data_dir
from ml_assets.lib.core.registry import ControlPlaneDamaged
from ml_assets.lib.core.stopping import Stopped, raise_if_stopped, stop_on_signals
from ml_assets.lib.core.workspace import Workspace
from ml_assets.lib.docs.interface_contract import ContractError
from ml_assets.specs.loading import DEMO_NAME, SPEC_ENV, load_spec, spec_from_env


def build_parser() -> argparse.ArgumentParser:
    """The ``ml-assets`` parser: global ``--data-dir``/``--spec``, one subcommand each.

    Returns
    -------
    argparse.ArgumentParser
        Every subcommand sets ``func(args, workspace) -> exit code`` and has ``--json``.
    """
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help=f"runtime state directory (default ${DATA_DIR_ENV} "
                                           "or ./data)")
    parser.add_argument("--spec", help="dataset spec: path/to/spec.py[:NAME], path/to/spec.toml "
                                       f"or package.module:NAME (default ${SPEC_ENV} or "
                                       f"{DEMO_NAME}, the demo)")
    sub = parser.add_subparsers(dest="command", required=True)
    actor = os.environ.get("USER") or getpass.getuser()
    runs.add_parsers(sub, actor)
    reports.add_parsers(sub)
    control.add_parsers(sub, actor)
    control_plane.add_parsers(sub, actor)
    landing.add_parsers(sub, actor)
    export_cli.add_parsers(sub)
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def workspace(args: argparse.Namespace) -> Workspace:
    """The command's Workspace from ``--data-dir``/``--spec`` (or their environment defaults).

    Raises
    ------
    SpecError
        When the spec reference does not load (``ml_assets.specs.loading.load_spec``).
    """
    data_dir = args.data_dir or default_data_dir()
    spec = (load_spec(args.spec, data_dir=data_dir) if args.spec
            else spec_from_env(data_dir=data_dir))
    return Workspace.open(data_dir, spec)


def run_command(args: argparse.Namespace, ws: Workspace) -> int:
    """Run the parsed command; SIGINT or SIGTERM stops it within seconds, with a message.

    Returns
    -------
    int
        The command's exit code, or 128 + the signal number when a signal stopped it.
    """
    with stop_on_signals():
        try:
            code = args.func(args, ws)
            raise_if_stopped()  # a signal a library handled itself (uvicorn shuts down politely)
            return code
        except Stopped as exc:
            where = f" {exc.where}" if exc.where else ""
            print(f"ml-assets {args.command}: stopped by {exc.signal_name}{where}; the lake and "
                  "control plane are consistent (every write is atomic, an interrupted Dagster "
                  "run is marked failed); rerun to continue", file=sys.stderr)
            return 128 + signal.Signals[exc.signal_name].value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ml-assets`` console script; returns the exit code."""
    # Dagster's notices for the beta/preview APIs we use on purpose (backfill policies,
    # partitioned checks): the version is pinned in the lock and the behaviour is tested.
    warnings.filterwarnings("ignore", message=".*is currently in (beta|preview).*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ws = workspace(args)
    except SpecError as exc:  # the spec's own error line, not a usage message
        return refused(f"ml-assets: bad spec: {exc}")
    try:
        return run_command(args, ws)
    except ControlPlaneDamaged as exc:  # every command, not only the control ones, says why
        return refused(f"refused: {exc}")
    except ContractError as exc:  # a malformed override file: what to write, not a traceback
        return refused(f"ml-assets {args.command}: {exc}")
    except BrokenPipeError:  # `ml-assets ... --json | head`: the reader left; exit quietly
        # (the Python docs' recipe: stdout to devnull so the interpreter's final flush is silent)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
