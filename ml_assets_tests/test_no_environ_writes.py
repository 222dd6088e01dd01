"""No module of the package writes the process environment: settings are parsed once at an
entry point and carried down (a Workspace), and the Dagster instance is opened from its
directory instead of through ``DAGSTER_HOME``."""

import re
from pathlib import Path

import ml_assets

WRITES = re.compile(r"os\.environ\s*\[[^\]]*\]\s*=(?!=)|os\.environ\.(setdefault|update|pop|clear)\s*\("
                    r"|os\.putenv\s*\(|os\.unsetenv\s*\(|del\s+os\.environ")


def test_the_package_never_writes_os_environ():
    root = Path(ml_assets.__file__).parent
    hits = [f"{path.relative_to(root.parent)}:{n}: {line.strip()}"
            for path in sorted(root.rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1) if WRITES.search(line)]
    assert not hits, "os.environ writes:\n" + "\n".join(hits)


def test_the_pattern_catches_each_kind_of_write():
    for line in ('os.environ["X"] = "1"', 'os.environ.setdefault("X", "1")',
                 "os.environ.update(env)", 'os.putenv("X", "1")', 'del os.environ["X"]'):
        assert WRITES.search(line), line
    for line in ('os.environ.get("X")', 'env = {**os.environ, "X": "1"}', 'os.environ["X"] == "1"'):
        assert not WRITES.search(line), line
