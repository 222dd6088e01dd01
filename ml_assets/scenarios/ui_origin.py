"""Where the UI of ``make ui`` looks for the demo's runs and sensor states: the code location
that ``workspace.yaml`` declares (read with Dagster's own workspace loader).

The Overview timeline shows only runs that carry a job origin (location, repository, job), as
runs launched from the UI or by the daemon do; the sensor daemon finds a sensor's cursor by its
selector (location, repository, sensor name). Dagster has no public constructor of either for
a process that is not the webserver, hence ``dagster._core`` here.
"""

from __future__ import annotations

from pathlib import Path

from dagster._core.remote_origin import (
    CodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.workspace.load import location_origins_from_yaml_paths

from ml_assets.lib.training.provenance import REPO_ROOT

WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
REPOSITORY_NAME = "__repository__"  # the name Dagster gives a module's single Definitions


def repository_origin(workspace: Path = WORKSPACE_FILE) -> RemoteRepositoryOrigin:
    """The repository of the one code location ``workspace`` declares.

    Raises
    ------
    FileNotFoundError
        When ``workspace`` does not exist (an installed package has no workspace file).
    ValueError
        When it does not declare exactly one code location.
    """
    if not workspace.is_file():
        raise FileNotFoundError(f"no Dagster workspace file at {workspace}")
    origins: list[CodeLocationOrigin] = list(location_origins_from_yaml_paths([str(workspace)]))
    if len(origins) != 1:
        raise ValueError(f"{workspace}: expected one code location, found {len(origins)}")
    return RemoteRepositoryOrigin(origins[0], REPOSITORY_NAME)


def job_origin(name: str, workspace: Path = WORKSPACE_FILE) -> RemoteJobOrigin | None:
    """The origin the UI serving ``workspace`` gives the job ``name``; None without a
    workspace file (such a run keeps its job name but is not on the timeline)."""
    if not workspace.is_file():
        return None
    return RemoteJobOrigin(repository_origin(workspace), name)


def sensor_origin(name: str, workspace: Path = WORKSPACE_FILE) -> RemoteInstigatorOrigin:
    """The origin the daemon serving ``workspace`` gives the sensor ``name``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`repository_origin`.
    """
    return RemoteInstigatorOrigin(repository_origin(workspace), name)
