"""`ml-assets bench`: side-by-side performance of ml_assets against the baselines it replaces.

Every measured step runs in its own subprocess (``worker``) so its peak RSS is its own; the
runner collects the figures, and ``report`` writes JSON, Markdown and an SVG plot.
"""
