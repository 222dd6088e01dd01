"""Processes that Dagster Pipes starts outside the orchestrator (``PipesSubprocessClient`` or
another Pipes client). They import ``dagster-pipes`` (no dependencies), never Dagster itself, so
they run as they are on a driver or job image; the work is in ``lib/``."""
