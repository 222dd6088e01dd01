"""Where a model came from: code commit (+ dirty flag) and the lockfile's SHA-256."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ml_assets.lib.core.artifacts import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCKFILE = REPO_ROOT / "requirements.lock"


def code_commit(root: Path | None = None) -> tuple[str, bool]:
    """(commit, dirty) of the checkout ``root`` (default: ``REPO_ROOT``, read at call time, the
    checkout the package runs from).

    Dirty means code that can run differs from the commit: a change to a tracked file, or an
    untracked file inside the package (importable). Runtime state under ``data/`` and untracked
    files elsewhere - a user's own spec or CSVs beside the checkout - do not count: a spec is
    recorded on the card with its own SHA-256. ``("unknown", True)`` outside a git checkout.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root or REPO_ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!data")
        stray = git("ls-files", "--others", "--exclude-standard", "--", "ml_assets")
        return commit, bool(changed or stray)
    except (OSError, subprocess.SubprocessError):
        return "unknown", True


def lockfile_sha256() -> str:
    """SHA-256 (hex) of ``requirements.lock``, or ``"missing"`` when there is none."""
    return sha256_file(LOCKFILE) if LOCKFILE.exists() else "missing"
