"""The floor of any two-sample monitor: read both parquet files and sort every feature column (bench_monitor_process).

Usage: ``python read_sort_floor.py REFERENCE CURRENT OUT.json``.
"""

import json
import os
import sys

import numpy as np
import pandas as pd

reference, current, out = sys.argv[1:4]
rows = 0
for path in (reference, current):
    frame = pd.read_parquet(path)
    for col in (c for c in frame.columns if c.startswith("f")):
        np.sort(frame[col].to_numpy())
    rows += len(frame)
with open(out, "w") as fh:
    json.dump({"flagged": None, "rows": rows}, fh)
# skip interpreter teardown: pyarrow 18 with its thread pools sometimes aborts there
# ("terminate called without an active exception", components/arrow.py) after the work is done
os._exit(0)
