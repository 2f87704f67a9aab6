"""alibi-detect's KSDrift used naively on two parquet files (bench_monitor_process's peer).

Usage: ``python alibi_ks.py REFERENCE CURRENT OUT.json``; Bonferroni at 0.05 over the features.
alibi-detect applies its correction only to the batch verdict (``drift_type="feature"``
compares every p-value with 0.05 itself), so the per-feature flags divide by the count here.
"""

import json
import os
import sys

import pandas as pd
from alibi_detect.cd import KSDrift

reference, current, out = sys.argv[1:4]
ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
features = [c for c in ref.columns if c.startswith("f")]
detector = KSDrift(ref[features].to_numpy(), p_val=0.05, correction="bonferroni")
pred = detector.predict(cur[features].to_numpy(), drift_type="feature", return_p_val=True)["data"]
threshold = 0.05 / len(features)
with open(out, "w") as fh:
    json.dump({"flagged": sorted(f for f, p in zip(features, pred["p_val"], strict=True) if p < threshold)}, fh)
# skip interpreter teardown: pyarrow 18 with its thread pools sometimes aborts there
# ("terminate called without an active exception", components/arrow.py) after the work is done
os._exit(0)
