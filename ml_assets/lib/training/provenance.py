"""Where a model came from: code commit (+ dirty flag) and the lockfile's SHA-256."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ml_assets.lib.core.artifacts import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCKFILE = REPO_ROOT / "requirements.lock"


def code_commit() -> tuple[str, bool]:
    """(commit, dirty). Runtime state under data/ does not make the tree dirty."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!data"],
                                cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                                timeout=10).stdout.strip()
        return commit, bool(status)
    except (OSError, subprocess.SubprocessError):
        return "unknown", True


def lockfile_sha256() -> str:
    """SHA-256 (hex) of ``requirements.lock``, or ``"missing"`` when there is none."""
    return sha256_file(LOCKFILE) if LOCKFILE.exists() else "missing"
