"""``make ui-check``: screenshots of what a person sees in the UI after ``make demo``.

Starts ``dagster-webserver`` on 127.0.0.1 at a free port over the data directory's Dagster home
(as ``make ui`` would, without the daemon: nothing runs while the pictures are taken), waits
for it to answer, and has a headless Chromium (Debian's ``chromium``) save one PNG per page of
:data:`PAGES`: the asset graph, a monitoring asset's page (status, checks, its metadata by
model version; the UI draws them over partitions behind its Plots toggle, a click a screenshot
cannot make) and the model card. The pictures are for a person to look at; what a test can assert about the UI is asserted
through its GraphQL API (``ml_assets_tests/defs/test_webserver_ui.py``).

Usage: ``python -m ml_assets.scenarios.ui_check DATA_DIR OUT_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ml_assets.lib.core.paths import DataPaths
from ml_assets.scenarios.runner import write_instance_config
from ml_assets.scenarios.ui_origin import WORKSPACE_FILE
from ml_assets.serving.app import free_port

# file stem -> the UI's path: what a new ML engineer opens first
PAGES = {
    "asset_graph": "/asset-groups",
    "feature_drift_overview": "/assets/feature_drift?view=overview",
    "model_card": "/assets/model_card",
}
START_TIMEOUT_S = 180
RENDER_BUDGET_MS = 20_000  # the UI is a single-page app: let it fetch and draw before the shot
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class UiCheckFailed(RuntimeError):
    """The webserver did not come up, or Chromium is missing or saved no picture."""


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UiCheckFailed(f"dagster-webserver exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise UiCheckFailed(f"dagster-webserver did not answer within {START_TIMEOUT_S} s; see {log}")


def _dismiss_community_dialog(url: str) -> None:
    """Mark the UI's "Join the Dagster community" dialog seen (its own GraphQL mutation, stored
    in the Dagster home): on a local origin it covers the first page a new profile opens."""
    body = json.dumps({"query": "mutation { setNuxSeen }"}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body,  # noqa: S310 - 127.0.0.1
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 - our own 127.0.0.1
        if r.status != 200:
            raise UiCheckFailed(f"the webserver refused setNuxSeen: HTTP {r.status}")


def screenshot(chromium: str, url: str, out: Path) -> Path:
    """One page as a 1600x1000 PNG at ``out``.

    Raises
    ------
    UiCheckFailed
        Chromium failed or wrote no PNG.
    """
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=1600,1000", f"--virtual-time-budget={RENDER_BUDGET_MS}",
           f"--screenshot={out}", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode or not out.is_file() or out.read_bytes()[:8] != PNG_MAGIC:
        raise UiCheckFailed(f"chromium saved no screenshot of {url}: {done.stderr[-500:]}")
    return out


def ui_check(data_dir: Path, out_dir: Path) -> list[Path]:
    """Screenshot every page of :data:`PAGES` from a webserver over ``data_dir``.

    Returns
    -------
    list of Path
        The PNG files written, in :data:`PAGES` order.

    Raises
    ------
    UiCheckFailed
        No ``chromium`` on PATH, the webserver did not start, or a screenshot failed.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise UiCheckFailed("no chromium on PATH: `apt-get install chromium` (make ui-check "
                            "installs it when it can)")
    paths = DataPaths(data_dir)
    write_instance_config(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), out_dir / "webserver.log"
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DAGSTER_HOME": str(paths.dagster_home),
           "ML_ASSETS_DATA_DIR": str(paths.root)}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(WORKSPACE_FILE),
             "-h", "127.0.0.1", "-p", str(port)],
            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(url, proc, log)
        _dismiss_community_dialog(url)
        return [screenshot(chromium, url + page, out_dir / f"{name}.png")
                for name, page in PAGES.items()]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    try:
        for png in ui_check(Path(sys.argv[1]), Path(sys.argv[2])):
            print(png)
    except UiCheckFailed as exc:
        sys.exit(f"ui-check: {exc}")
