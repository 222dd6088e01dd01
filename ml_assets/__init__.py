"""ml_assets: a Dagster asset graph that takes a tabular model from raw events to production."""

import warnings

# pandera imports pyspark.pandas whenever pyspark is installed (the Spark driver's environment,
# .venv-spark, has it), and pyspark warns on pandas 3 at that import. We never use
# pyspark.pandas (Spark data crosses as Parquet/Arrow), so the warning only clutters every
# CLI start and run log.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)
