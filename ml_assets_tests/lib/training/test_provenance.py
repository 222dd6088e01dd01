"""code_dirty: what makes a checkout's code differ from its commit, and what does not."""

import subprocess

from ml_assets.lib.training.provenance import code_commit


def _git(root, *args):
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=root, check=True, capture_output=True)


def test_user_files_beside_the_package_leave_the_code_clean(tmp_path):
    (tmp_path / "ml_assets").mkdir()
    (tmp_path / "ml_assets" / "core.py").write_text("X = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    commit, dirty = code_commit(tmp_path)
    assert len(commit) == 40 and not dirty
    # a user's spec and CSVs inside the checkout, runtime state: recorded by their own hashes
    (tmp_path / "my_orders").mkdir()
    (tmp_path / "my_orders" / "spec.toml").write_text("name = 'x'\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "control.db").write_text("")
    assert code_commit(tmp_path) == (commit, False)
    # an untracked module inside the package is importable code
    (tmp_path / "ml_assets" / "extra.py").write_text("Y = 2\n")
    assert code_commit(tmp_path) == (commit, True)
    (tmp_path / "ml_assets" / "extra.py").unlink()
    # a change to a tracked file anywhere
    (tmp_path / "ml_assets" / "core.py").write_text("X = 2\n")
    assert code_commit(tmp_path) == (commit, True)


def test_outside_a_checkout_is_unknown_and_dirty(tmp_path):
    assert code_commit(tmp_path) == ("unknown", True)
