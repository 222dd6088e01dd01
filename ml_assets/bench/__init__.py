"""`ml-assets bench`: side-by-side performance of ml_assets against the baselines it replaces.

Every measured step runs in its own subprocess (``worker``) so its peak RSS is its own; the
runner collects the figures, and ``report`` writes JSON, Markdown and an SVG plot.
"""

# Selectable with ``--sections`` (the feature build always runs); here so the CLI's parser
# lists them without importing the bench.
SECTIONS = ("year", "ingest", "drift", "estimation", "scoring", "serving", "reproduce", "spark")
