"""Dagster definitions by domain (``defs/<domain>/definitions.py``), merged in
``ml_assets/definitions.py``.

The beta and preview Dagster APIs these definitions use on purpose are named here; their
warnings are silenced for those APIs only (each repeated on every load: ~200 lines in the log of
``make ui``), so any other beta API still warns.
"""

import re
import warnings

import dagster as dg

USED_ON_PURPOSE = {
    # @asset(backfill_policy=BackfillPolicy.single_run()): a partition range is one run.
    "Parameter `backfill_policy` of function `asset`": dg.BetaWarning,
    # TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True): feature lookback
    # windows reaching before the first raw partition.
    "Parameter `allow_nonexistent_upstream_partitions` of initializer "
    "`TimeWindowPartitionMapping.__init__`": dg.BetaWarning,
    # AssetCheckSpec(partitions_def=...): the monitoring checks judge each day on its own.
    "Specifying a partitions_def on an AssetCheckSpec": dg.PreviewWarning,
}
for _api, _category in USED_ON_PURPOSE.items():
    warnings.filterwarnings("ignore", message=re.escape(_api), category=_category)
