"""Scenarios: the demo, the incident drill, the six-weeks drill and the synthetic generator."""

# The demo's timeline in days of data: 60 of warm-up (30-day label windows plus 30 days of
# label maturity, ``DatasetSpec.warm_start``), the first model's window after it, then
# scoring. Here so the CLI can show the default without importing the scenarios.
DEMO_DAYS = 150
# Share of the timeline: day 100, 40 warm days after warm-up, of which the first 10 have
# mature labels at the cutoff - the held-out days the card's per-day AUC baseline needs.
FIRST_MODEL_AT = 0.67
