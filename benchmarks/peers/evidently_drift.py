"""Evidently's DataDriftPreset on two parquet files, as a user would run it (bench_monitor_process's peer, in its own venv).

Usage: ``python evidently_drift.py REFERENCE CURRENT OUT.json``; writes the flagged columns.
"""

import json
import sys

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

reference, current, out = sys.argv[1:4]
ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
features = [c for c in ref.columns if c.startswith("f")]
snapshot = Report([DataDriftPreset(columns=features)]).run(cur[features], ref[features])
flagged = []
for m in snapshot.dict()["metrics"]:
    cfg = m["config"]
    if cfg.get("type", "").endswith("ValueDrift"):
        distance = "distance" in cfg["method"].lower() or "divergence" in cfg["method"].lower()
        if (m["value"] >= cfg["threshold"]) if distance else (m["value"] < cfg["threshold"]):
            flagged.append(cfg["column"])
with open(out, "w") as fh:
    json.dump({"flagged": sorted(flagged)}, fh)
