"""How close is the label-free estimate to the truth? driftloop's CBPE against NannyML's, same windows.

For each data set: fit driftloop's estimator (``components.monitor.estimated``) on a labelled
reference, estimate accuracy and AUC of every later window from its scores alone, and compare
with the realised value once the labels are used. NannyML's own CBPE runs on the *same*
reference and windows in its own virtualenv (it needs numpy 2; ours is pinned), created on
first use at ``.driftloop/bench-venvs/nannyml``. Prints per data set a table (window, n,
realised, ours and its band, NannyML and its band, |error| of each), the mean absolute error
(MAE) of each side and the ratio ours / NannyML, and the time each side took; writes a plot
per data set to ``.driftloop/bench/cbpe_<dataset>.png``. Goal: MAE no worse than NannyML's.

Data sets:

- the five seed scenarios (``components.data.scenarios.generate(name, seed=0)``, default
  rows): windows are the scenario's periods (days for the hourly ones); the periods before
  the onset are split in time into training (first half, the policy's trainer), reference
  (next quarter, where the estimators calibrate) and the rest, which are measured together
  with every period after the onset;
- ``car_loan`` and ``employment_ma``: public labelled sets shipped inside NannyML's wheel
  (``nannyml/datasets/data``, read straight from the wheel with pandas; the model's scores
  come with the data). ``car_loan`` is NannyML's synthetic credit set (50,000 reference +
  50,000 analysis rows, chunks of 5,000); ``employment_ma`` is real census data
  (folktables ACS, Massachusetts; 2015 reference, 2016-2018 analysis, chunks of 10,000).

Both methods judge the same classifier: class 1 when the score >= 0.5
(``components.metrics.predicted_class``), which is also what "realised" uses.

Usage: ``python benchmarks/bench_cbpe.py [--datasets churn,car_loan,...] [--no-peer]``
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import math
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import peer_venv  # noqa: E402
from components.metrics import predicted_class  # noqa: E402
from components.monitor.estimated import (  # noqa: E402
    estimate_check,
    expected_metrics,
    fit_estimator,
    realised_metrics,
)

METRICS = ("accuracy", "auc")
SCENARIOS = ("churn", "credit", "fraud", "recsys", "concept")
PUBLIC = ("car_loan", "employment_ma")
NANNYML = "nannyml==0.13.1"
# nannyml 0.13.1 imports statsmodels (plots/joy_plot.py) without declaring it; pyarrow reads our parquet
PEER_PACKAGES = (NANNYML, "pyarrow", "statsmodels")
PEER_VENV = peer_venv.venv_path("nannyml")
ensure_peer_venv = functools.partial(peer_venv.ensure_peer_venv, packages=PEER_PACKAGES)  # (venv, python=...) -> (python | None, why)
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "nannyml_cbpe.py"
DATA_DIR = ROOT / ".driftloop" / "bench-data"
OUT_DIR = ROOT / ".driftloop" / "bench"


@dataclass(frozen=True)
class Window:
    """One window to estimate: its labels (hidden from both estimators) and the model's scores."""

    name: str
    labels: np.ndarray
    scores: np.ndarray
    after_onset: bool = False


@dataclass(frozen=True)
class Dataset:
    """A labelled reference to calibrate on and the windows to estimate."""

    name: str
    source: str
    reference_labels: np.ndarray
    reference_scores: np.ndarray
    windows: list[Window]


@dataclass
class Estimates:
    """One side's estimates: ``values[window][metric] = (value, lower, upper)``, or why it is missing."""

    side: str
    values: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    seconds: float = float("nan")
    missing: str = ""
    note: str = ""


# ---------------------------------------------------------------- windows


def split_periods(keys: Sequence[Any], onset: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """Periods (sorted) -> (train, reference, measured): the first half before the onset trains,
    the next quarter is the reference, the rest before the onset and everything after is measured.

    >>> split_periods(list(range(10)), 8)
    ([0, 1, 2, 3], [4, 5], [6, 7, 8, 9])
    """
    keys = sorted(keys)
    before = [k for k in keys if k < onset]
    if len(before) < 3:
        raise ValueError(f"need at least 3 periods before the onset, got {len(before)}")
    n_train = len(before) // 2
    n_ref = max(1, len(before) // 4)
    return before[:n_train], before[n_train:n_train + n_ref], [k for k in keys if k not in set(before[:n_train + n_ref])]


def fixed_windows(labels: Any, scores: Any, size: int, prefix: str = "chunk", after_onset_from: int | None = None) -> list[Window]:
    """Consecutive windows of ``size`` rows; a trailing remainder shorter than ``size`` is dropped.

    >>> [(w.name, len(w.scores)) for w in fixed_windows(np.zeros(25), np.zeros(25), 10)]
    [('chunk 0', 10), ('chunk 1', 10)]
    """
    y, s = np.asarray(labels), np.asarray(scores, dtype=float)
    return [Window(f"{prefix} {i}", y[i * size:(i + 1) * size], s[i * size:(i + 1) * size],
                   after_onset=after_onset_from is not None and i >= after_onset_from)
            for i in range(len(s) // size)]


def period_key(timestamps: pd.Series, grain: str) -> pd.Series:
    """The window each row falls in: the scenario's period, but days for hourly data (hours hold too few rows).

    >>> period_key(pd.Series(pd.to_datetime(["2025-03-01T05:00", "2025-03-02T07:00"], utc=True)), "hour").tolist()
    ['2025-03-01', '2025-03-02']
    """
    if grain == "month":
        return timestamps.dt.strftime("%Y-%m")
    return timestamps.dt.strftime("%Y-%m-%d")


def scenario_dataset(name: str, rows: int | None = None) -> Dataset:
    """Train the policy's model on the early pre-onset periods, score the rest, window by period."""
    from components.data.scenarios import generate, get_spec
    from components.policy import load_policy
    from components.training.trainers import train_model

    spec, policy = get_spec(name), load_policy(name)
    frame = generate(name, rows=rows, seed=0)
    keys = period_key(frame[spec.timestamp], spec.period)
    onset = period_key(pd.Series([spec.onset]), spec.period).iloc[0]
    train, ref, measured = split_periods(keys.unique().tolist(), onset)
    model = train_model(policy, frame[keys.isin(train)])
    scores = model.predict(frame)
    labels = frame[spec.label].to_numpy()
    ref_rows = keys.isin(ref).to_numpy()
    windows = [Window(k, labels[(keys == k).to_numpy()], scores[(keys == k).to_numpy()], after_onset=k >= onset) for k in measured]
    return Dataset(name, f"scenario {name} (seed 0, {len(frame):,} rows, {policy.trainer.kind}; train {train[0]}..{train[-1]}, "
                         f"reference {ref[0]}..{ref[-1]}, onset {onset})", labels[ref_rows], scores[ref_rows], windows)


# ---------------------------------------------------------------- public data (inside NannyML's wheel)


def nannyml_wheel() -> Path:
    """NannyML's wheel (data only, no install): downloaded once with pip into .driftloop/bench-data."""
    found = sorted(DATA_DIR.glob("nannyml-0.13.1-*.whl"))
    if found:
        return found[0]
    print(f"  downloading the {NANNYML} wheel (for its data files) into {DATA_DIR} ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", NANNYML, "--no-deps", "-d", str(DATA_DIR)], check=True)
    return sorted(DATA_DIR.glob("nannyml-0.13.1-*.whl"))[0]


def read_packaged(wheel: Path, name: str) -> pd.DataFrame:
    """One file of ``nannyml/datasets/data`` read from the wheel with pandas."""
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(f"nannyml/datasets/data/{name}")
    return pd.read_parquet(io.BytesIO(raw)) if name.endswith(".pq") else pd.read_csv(io.BytesIO(raw))


def public_dataset(name: str, wheel: Path) -> Dataset:
    """``car_loan`` (synthetic, chunks of 5,000) or ``employment_ma`` (census, chunks of 10,000)."""
    if name == "car_loan":
        ref = read_packaged(wheel, "synthetic_car_loan_reference.csv")
        ana = read_packaged(wheel, "synthetic_car_loan_analysis.csv").merge(
            read_packaged(wheel, "synthetic_car_loan_analysis_target.csv"), on="id")
        label, score, size = "repaid", "y_pred_proba", 5_000
        source = "NannyML 0.13.1 synthetic car loan (50,000 reference + 50,000 analysis rows; drift in the analysis's 2nd half)"
    elif name == "employment_ma":
        ref = read_packaged(wheel, "employment_MA_reference.pq")
        ana = read_packaged(wheel, "employment_MA_analysis.pq").merge(read_packaged(wheel, "employment_MA_analysis_target.pq"), on="id")
        label, score, size = "employed", "predicted_probability", 10_000
        source = "NannyML 0.13.1 employment_MA (folktables ACS census, Massachusetts; reference 2015, analysis 2016-2018)"
    else:
        raise ValueError(f"unknown public data set {name!r}; use one of {PUBLIC}")
    ana = ana.sort_values("id", kind="mergesort")
    return Dataset(name, source, ref[label].to_numpy().astype(int), ref[score].to_numpy(dtype=float),
                   fixed_windows(ana[label].to_numpy().astype(int), ana[score].to_numpy(dtype=float), size))


# ---------------------------------------------------------------- the two estimators


def estimate_ours(data: Dataset, seed: int = 0) -> Estimates:
    """driftloop's estimate of each window, through the same ``estimate_check`` the monitor uses."""
    started = time.perf_counter()
    estimator = fit_estimator(data.reference_labels, data.reference_scores, seed=seed)
    out = Estimates("ours")
    for w in data.windows:
        out.values[w.name] = {}
        for metric in METRICS:
            res = estimate_check(estimator, w.scores, metric)
            value = float("nan") if res.statistic is None else float(res.statistic)
            out.values[w.name][metric] = (value, float(res.details["lower"]), float(res.details["upper"]))
    out.seconds = time.perf_counter() - started
    cal = estimator.calibration
    out.note = (f"calibration {cal.method}, held-out ECE {cal.holdout_ece:.4f} (raw scores {cal.holdout_ece_raw:.4f}), "
                f"{'trusted' if cal.trusted else 'FLAGGED: not trusted'}")
    return out


def estimate_uncalibrated(data: Dataset) -> Estimates:
    """The expected metrics of the raw scores, no calibration: what calibration has to beat."""
    out = Estimates("raw scores")
    for w in data.windows:
        values = expected_metrics(w.scores, w.scores)
        out.values[w.name] = {m: (values[m], float("nan"), float("nan")) for m in METRICS}
    return out


def peer_frame(labels: Any, scores: Any, window: str | None = None) -> pd.DataFrame:
    """The columns the peer script reads (the predicted class is ours, so both judge one classifier).

    >>> peer_frame([1, 0], [0.7, 0.2], "w").to_dict("list")
    {'y_true': [1, 0], 'y_pred_proba': [0.7, 0.2], 'y_pred': [1, 0], 'window': ['w', 'w']}
    """
    s = np.asarray(scores, dtype=float)
    frame = pd.DataFrame({"y_true": np.asarray(labels).astype(int), "y_pred_proba": s, "y_pred": predicted_class(s)})
    if window is not None:
        frame["window"] = window
    return frame


def estimate_peer(data: Dataset, python: Path | None, why: str = "") -> Estimates:
    """NannyML's CBPE on the same reference and windows, through the peer script in its venv."""
    out = Estimates("nannyml")
    if python is None:
        out.missing = why or "peer venv unavailable"
        return out
    with tempfile.TemporaryDirectory(prefix="bench-cbpe-") as tmp:
        ref, win, res = Path(tmp, "reference.parquet"), Path(tmp, "windows.parquet"), Path(tmp, "out.json")
        peer_frame(data.reference_labels, data.reference_scores).to_parquet(ref, index=False)
        pd.concat([peer_frame(w.labels, w.scores, w.name) for w in data.windows], ignore_index=True).to_parquet(win, index=False)
        started = time.perf_counter()
        done = subprocess.run([str(python), str(PEER_SCRIPT), "--reference", str(ref), "--windows", str(win), "--out", str(res)],
                              capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - started
        if done.returncode != 0 or not res.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            out.missing = f"peer script failed (exit {done.returncode}): {last}"
            return out
        payload = json.loads(res.read_text())
    none = float("nan")
    for name, metrics in payload["windows"].items():
        out.values[name] = {m: tuple(none if v[k] is None else float(v[k]) for k in ("value", "lower", "upper"))  # type: ignore[misc]
                            for m, v in metrics.items()}
    # the estimator's own time (fit + estimate), not the interpreter start-up and imports
    out.seconds = float(payload["fit_seconds"] + payload["estimate_seconds"])
    out.missing = f"(process wall time {wall:.1f} s incl. imports)"
    return out


# ---------------------------------------------------------------- scoring and printing


def realised(data: Dataset) -> dict[str, dict[str, float]]:
    """The realised metrics of each window (labels used only here)."""
    return {w.name: realised_metrics(w.labels, w.scores) for w in data.windows}


def mean_abs_error(est: Estimates, truth: dict[str, dict[str, float]], metric: str, only: Collection[str] | None = None) -> float:
    """MAE over the windows (``only`` these, if given) where both the estimate and the realised value exist.

    >>> e = Estimates("x", {"a": {"accuracy": (0.9, 0, 1)}, "b": {"accuracy": (0.7, 0, 1)}})
    >>> round(mean_abs_error(e, {"a": {"accuracy": 0.8}, "b": {"accuracy": 0.8}}, "accuracy"), 3)
    0.1
    """
    errors = [abs(est.values[w][metric][0] - t[metric]) for w, t in truth.items()
              if w in est.values and (only is None or w in only) and not math.isnan(t[metric]) and not math.isnan(est.values[w][metric][0])]
    return float(np.mean(errors)) if errors else float("nan")


def _fmt(x: float, width: int = 6, digits: int = 4) -> str:
    return f"{'-':>{width}}" if math.isnan(x) else f"{x:{width}.{digits}f}"


def window_table(data: Dataset, ours: Estimates, peer: Estimates, truth: dict[str, dict[str, float]], metric: str) -> str:
    """One line per window: n, realised, ours [band], NannyML [band], |error| of each; ``*`` marks after the onset."""
    lines = [f"{'window':<12} {'n':>6} {'realised':>8} {'ours':>6} {'ours band':>15} {'nannyml':>7} {'nannyml band':>15} {'|err| ours':>10} {'|err| nml':>9}"]
    nan3 = (float("nan"),) * 3
    for w in data.windows:
        t = truth[w.name][metric]
        o = ours.values.get(w.name, {}).get(metric, nan3)
        p = peer.values.get(w.name, {}).get(metric, nan3)
        lines.append(f"{w.name + (' *' if w.after_onset else ''):<12} {len(w.scores):>6} {_fmt(t, 8)} {_fmt(o[0])} "
                     f"[{_fmt(o[1])},{_fmt(o[2])}] {_fmt(p[0], 7)} [{_fmt(p[1])},{_fmt(p[2])}] "
                     f"{_fmt(abs(o[0] - t), 10)} {_fmt(abs(p[0] - t), 9)}")
    return "\n".join(lines)


def summary_line(ours: Estimates, peer: Estimates, truth: dict[str, dict[str, float]], metric: str,
                 only: Collection[str] | None = None) -> str:
    """``MAE ours, MAE nannyml, ratio ours/nannyml`` for one metric.

    >>> o = Estimates("ours", {"a": {"auc": (0.8, 0, 1)}}); p = Estimates("nannyml", {"a": {"auc": (0.9, 0, 1)}})
    >>> summary_line(o, p, {"a": {"auc": 0.85}}, "auc")
    'auc: MAE ours 0.05000, nannyml 0.05000, ratio ours/nannyml 1.00'
    """
    mo, mp = mean_abs_error(ours, truth, metric, only), mean_abs_error(peer, truth, metric, only)
    ratio = mo / mp if mp > 0 else float("nan")
    return f"{metric}: MAE ours {_fmt(mo, 0, 5)}, nannyml {_fmt(mp, 0, 5)}, ratio ours/nannyml {'-' if math.isnan(ratio) else f'{ratio:.2f}'}"


def blind_spot(data: Dataset, ours: Estimates, truth: dict[str, dict[str, float]], metric: str = "accuracy") -> str:
    """Mean estimate and realised value before and after the onset (concept drift: the estimate stays flat)."""
    parts = []
    for label, after in (("before onset", False), ("after onset", True)):
        names = [w.name for w in data.windows if w.after_onset == after]
        if not names:
            continue
        est = float(np.nanmean([ours.values[n][metric][0] for n in names]))
        real = float(np.nanmean([truth[n][metric] for n in names]))
        parts.append(f"{label}: estimated {est:.4f}, realised {real:.4f} ({len(names)} windows)")
    return f"{metric} " + "; ".join(parts)


def plot(data: Dataset, ours: Estimates, peer: Estimates, truth: dict[str, dict[str, float]], path: Path) -> Path:
    """Estimate vs realised over the windows, both methods, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(data.windows))
    names = [w.name for w in data.windows]
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(max(8, 0.3 * len(x) + 4), 3.2 * len(METRICS)), sharex=True)
    nan3 = (float("nan"),) * 3
    for ax, metric in zip(np.atleast_1d(axes), METRICS, strict=True):
        ax.plot(x, [truth[n][metric] for n in names], "k-o", ms=3, label="realised")
        for side, colour in ((ours, "tab:blue"), (peer, "tab:orange")):
            vals = np.array([side.values.get(n, {}).get(metric, nan3) for n in names], dtype=float)
            if np.isnan(vals[:, 0]).all():
                continue
            ax.plot(x, vals[:, 0], "--", color=colour, label=f"{side.side} estimate")
            ax.fill_between(x, vals[:, 1], vals[:, 2], color=colour, alpha=0.15)
        onset = [i for i, w in enumerate(data.windows) if w.after_onset]
        if onset:
            ax.axvline(onset[0] - 0.5, color="grey", lw=1, ls=":")
        ax.set_ylabel(metric)
        ax.legend(loc="best", fontsize=8)
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    fig.suptitle(f"CBPE on {data.name}: estimate (band) vs realised")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run_dataset(data: Dataset, peer_python: Path | None, why: str) -> dict[str, Any]:
    """Estimate, compare, print and plot one data set; returns the MAEs and timings."""
    truth = realised(data)
    ours = estimate_ours(data)
    peer = estimate_peer(data, peer_python, why)
    print(f"\n== {data.name}: {data.source}")
    print(f"   reference {len(data.reference_scores):,} rows; {len(data.windows)} windows measured (* = after the onset)")
    for metric in METRICS:
        print(f"\n-- {metric}\n{window_table(data, ours, peer, truth, metric)}")
    print()
    before = [w.name for w in data.windows if not w.after_onset]
    for metric in METRICS:
        print("   " + summary_line(ours, peer, truth, metric))
        if 0 < len(before) < len(data.windows):  # calibration quality, apart from what the drift does
            print("     before the onset only: " + summary_line(ours, peer, truth, metric, before).split(": ", 1)[1])
    raw = estimate_uncalibrated(data)
    print(f"   ours: {ours.note}; MAE if the raw scores were used uncalibrated: "
          + ", ".join(f"{m} {_fmt(mean_abs_error(raw, truth, m), 0, 5)}" for m in METRICS))
    print(f"   time: ours {ours.seconds:.2f} s; nannyml "
          + (f"{peer.seconds:.2f} s {peer.missing}" if peer.values else f"missing: {peer.missing}"))
    path = plot(data, ours, peer, truth, OUT_DIR / f"cbpe_{data.name}.png")
    print(f"   plot: {path.relative_to(ROOT)}")
    return {"ours": {m: mean_abs_error(ours, truth, m) for m in METRICS}, "nannyml": {m: mean_abs_error(peer, truth, m) for m in METRICS},
            "seconds": {"ours": ours.seconds, "nannyml": peer.seconds}, "ours_est": ours, "truth": truth}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(SCENARIOS + PUBLIC), help="comma-separated; default all")
    parser.add_argument("--no-peer", action="store_true", help="only driftloop's estimate")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS + PUBLIC))
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS + PUBLIC)}")

    peer_python, why = (None, "skipped (--no-peer)") if args.no_peer else ensure_peer_venv(PEER_VENV)
    if peer_python is None:
        print(f"  NannyML's CBPE will be missing: {why}", flush=True)
    loaders: dict[str, Callable[[], Dataset]] = {n: (lambda n=n: scenario_dataset(n)) for n in SCENARIOS}
    for n in PUBLIC:
        loaders[n] = lambda n=n: public_dataset(n, nannyml_wheel())
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"\n  preparing {name} ...", flush=True)
        data = loaders[name]()
        results[name] = run_dataset(data, peer_python, why)
        if name == "concept":
            print("   blind spot (pure concept drift, inputs quiet): " + blind_spot(data, results[name]["ours_est"], results[name]["truth"]))

    print("\n== summary: MAE of estimated vs realised, per window")
    print(f"{'dataset':<14} {'acc ours':>9} {'acc nml':>9} {'ratio':>6} {'auc ours':>9} {'auc nml':>9} {'ratio':>6} {'s ours':>7} {'s nml':>7}")
    for name, r in results.items():
        cells = []
        for m in METRICS:
            o, p = r["ours"][m], r["nannyml"][m]
            cells += [_fmt(o, 9, 5), _fmt(p, 9, 5), f"{o / p:6.2f}" if p > 0 else f"{'-':>6}"]
        print(f"{name:<14} {' '.join(cells)} {r['seconds']['ours']:7.2f} {_fmt(r['seconds']['nannyml'], 7, 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
