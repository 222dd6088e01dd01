"""The one Dagster entry point: ``defs``. ``build_definitions`` serves other specs and data dirs.

Each domain under ``defs/`` (mirroring ``lib/``) returns its own ``dg.Definitions``; they are
merged here and the shared resources (lake IO manager, the ``project`` workspace) are added once.
"""


import dagster as dg

from ml_assets.defs.docs import definitions as docs
from ml_assets.defs.features import definitions as features
from ml_assets.defs.ingest import definitions as ingest
from ml_assets.defs.monitoring import definitions as monitoring
from ml_assets.defs.release import definitions as release
from ml_assets.defs.resources import default_resources
from ml_assets.defs.scoring import definitions as scoring
from ml_assets.defs.serving import definitions as serving
from ml_assets.defs.training import definitions as training
from ml_assets.lib.core.datasets import DatasetSpec
from ml_assets.lib.core.paths import default_data_dir
from ml_assets.specs.loading import spec_from_env

# Pipeline order: the UI lists assets and jobs in the order they are merged.
DOMAINS = (ingest, features, training, scoring, serving, monitoring, release, docs)


def build_definitions(spec: DatasetSpec | None = None, data_dir: str | None = None) -> dg.Definitions:
    """Every domain's definitions for one dataset spec and data directory.

    Parameters
    ----------
    spec : DatasetSpec, optional
        The dataset spec object, held as is by the ``project`` resource; default: the spec
        ``ML_ASSETS_SPEC`` points at (a ``.py``/``.toml`` file or ``package.module:NAME``, see
        ``ml_assets/specs/loading.py``), else the fraud demo, starting where ``data_dir``'s
        ``demo.json`` says (``scenarios/demo_clock.py``).
    data_dir : str, optional
        Runtime state root (landing, lake, artifacts, control plane); default
        :func:`~ml_assets.lib.core.paths.default_data_dir`.

    Returns
    -------
    dg.Definitions
        Assets, checks, jobs, schedules and sensors of all domains, with the shared resources.

    Raises
    ------
    SpecError
        When no spec is passed and ``ML_ASSETS_SPEC`` does not load.
    """
    data_dir = data_dir or str(default_data_dir())
    spec = spec or spec_from_env(data_dir=data_dir)
    return dg.Definitions.merge(
        *(domain.build_defs(spec) for domain in DOMAINS),
        dg.Definitions(resources=default_resources(data_dir, spec)),
    )


defs = build_definitions()
