"""Tests that import pyspark. pyspark lives in the Spark driver's own environment, not the main
one (see the Makefile), so these are collected only where pyspark imports: the main run's
``lib/features/test_spark_environment.py`` runs this directory under ``$ML_ASSETS_SPARK_PYTHON``
and fails with its output if any test here fails."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("pyspark") else ["test_*.py"]
