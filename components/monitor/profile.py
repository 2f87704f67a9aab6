"""The reference profile: a reference window's sorted numeric columns and category counts, per scope, saved once.

A model version's profile is built when it is registered (from its reference sample) and
stored with it (``reference_profile.npz`` with its SHA-256 as a version tag); ``driftloop
monitor`` and the monitor step load it instead of reading and sorting the reference again.
It holds, for the whole window and for each policy segment: every numeric feature and the
prediction sorted (NaN dropped and counted), every categorical feature counted (missing
counted), the labels of the labelled rows counted, and the row counts. The drift monitors
(feature, prediction and label drift, PSI) run on it through
:meth:`~components.monitor.reference_summary.ReferenceSummary.from_sorted`; p-values are
those of the reference frame itself. The file is a plain ``.npz`` (no pickle) plus a JSON
manifest; :func:`load_profile` checks the digest before reading anything.

>>> import tempfile
>>> from components.policy import policy_from_dict
>>> policy = policy_from_dict({"model": "m", "entity": "id", "label": "y", "features": ["x"],
...     "monitors": [{"name": "fd", "type": "feature_drift"}]})
>>> ref = pd.DataFrame({"event_timestamp": pd.date_range("2025-01-01", periods=4, freq="D", tz="UTC"),
...                     "x": [3.0, 1.0, None, 2.0], "y": [0, 1, 1, None]})
>>> prof = ReferenceProfile.build(policy, ref)
>>> prof.scope(None).numeric["x"], prof.scope(None).categorical["y"]
((array([1., 2., 3.]), 1), ({'0': 1, '1': 2}, 0))
>>> path = Path(tempfile.mkdtemp()) / "p.npz"
>>> digest = prof.save(path)
>>> load_profile(path, digest).window["rows"]
4
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from components.errors import DataError
from components.monitor._checks import categorical_values, numeric_values

if TYPE_CHECKING:
    from components.policy import Policy

FORMAT = 1
PROFILE_SUFFIX = ".npz"


@dataclass
class ScopeProfile:
    """One scope (the whole window or one segment): sorted numeric columns, category counts, row counts."""

    rows: int
    labelled: int
    numeric: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)  # sorted values, NaN count
    categorical: dict[str, tuple[dict[str, int], int]] = field(default_factory=dict)  # counts, missing count

    @staticmethod
    def build(policy: Policy, frame: pd.DataFrame) -> ScopeProfile:
        """Sort and count ``frame``'s policy columns (the ones it has)."""
        scope = ScopeProfile(rows=len(frame), labelled=0)
        for col in (*policy.features, policy.prediction):
            if col in frame.columns and frame[col].notna().any():
                values, n_nan = numeric_values(frame, col, "reference")
                scope.numeric[col] = (np.sort(values), n_nan)
        for col in policy.categorical_features:
            if col in frame.columns and frame[col].notna().any():
                values, n_nan = categorical_values(frame, col, "reference")
                keys, counts = np.unique(values, return_counts=True)
                scope.categorical[col] = (dict(zip(keys.tolist(), counts.tolist(), strict=True)), n_nan)
        if policy.label in frame.columns:
            labels = frame[policy.label].dropna()
            scope.labelled = len(labels)
            if len(labels):  # as label_drift counts them: the labelled rows' 0/1 as text
                keys, counts = np.unique(labels.astype(int).astype(str).to_numpy(), return_counts=True)
                scope.categorical[policy.label] = (dict(zip(keys.tolist(), counts.tolist(), strict=True)), 0)
        return scope

    def column(self, column: str, as_name: str) -> ScopeProfile:
        """This scope with only ``column``, renamed ``as_name`` (how prediction and label drift test one column)."""
        out = ScopeProfile(self.rows, self.labelled)
        if column in self.numeric:
            out.numeric[as_name] = self.numeric[column]
        if column in self.categorical:
            out.categorical[as_name] = self.categorical[column]
        return out

    def constant_columns(self, columns: list[str]) -> list[str]:
        """Which of ``columns`` hold a single value here."""
        out = [c for c in columns if c in self.numeric and self.numeric[c][0][0] == self.numeric[c][0][-1]]
        return out + [c for c in columns if c in self.categorical and len(self.categorical[c][0]) == 1]


@dataclass
class ReferenceProfile:
    """Scopes by segment (``None`` = the whole window), the reference window's summary, the file's digest."""

    scopes: dict[str | None, ScopeProfile]
    window: dict[str, Any]
    segment_column: str | None = None
    sha256: str | None = None

    @classmethod
    def build(cls, policy: Policy, reference: pd.DataFrame) -> ReferenceProfile:
        """Profile ``reference`` for ``policy``: the whole window and each of the policy's segments."""
        from components.monitor.context import prepare_window, window_summary

        if len(reference) == 0:
            raise DataError("the reference window is empty (0 rows); nothing to profile", fix="profile a reference window with rows")
        seg = policy.segment_column
        scopes: dict[str | None, ScopeProfile] = {None: ScopeProfile.build(policy, reference)}
        if policy.segments and seg in reference.columns:
            as_text = reference[seg].astype(str)
            for value in policy.segments.values:
                scopes[value] = ScopeProfile.build(policy, reference[as_text == value])
        window = window_summary(policy, prepare_window(policy, reference[[policy.timestamp, *([policy.label] if policy.label in reference.columns else [])]]))
        return cls(scopes, window, seg)

    def scope(self, segment: str | None) -> ScopeProfile | None:
        """The profile of one scope, or None if it was not profiled."""
        return self.scopes.get(segment)

    def save(self, path: str | Path) -> str:
        """Write the profile (``.npz``, no pickle) and return its SHA-256."""
        arrays: dict[str, np.ndarray] = {}
        manifest: dict[str, Any] = {"format": FORMAT, "window": self.window, "segment_column": self.segment_column, "scopes": []}
        for i, (segment, scope) in enumerate(self.scopes.items()):
            entry: dict[str, Any] = {"segment": segment, "rows": scope.rows, "labelled": scope.labelled, "numeric": [], "categorical": []}
            for j, (col, (values, n_nan)) in enumerate(scope.numeric.items()):
                arrays[f"s{i}n{j}"] = values
                entry["numeric"].append([col, n_nan])
            for j, (col, (counts, n_missing)) in enumerate(scope.categorical.items()):
                arrays[f"s{i}c{j}k"] = np.array(list(counts), dtype=str)
                arrays[f"s{i}c{j}v"] = np.array(list(counts.values()), dtype=np.int64)
                entry["categorical"].append([col, n_missing])
            manifest["scopes"].append(entry)
        arrays["manifest"] = np.array(json.dumps(manifest))
        path = Path(path)
        with path.open("wb") as fh:
            np.savez(fh, **arrays)
        self.sha256 = file_sha256(path)
        return self.sha256


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_profile(path: str | Path, sha256: str | None = None) -> ReferenceProfile:
    """Read a profile written by :meth:`ReferenceProfile.save`; DataError if unreadable or not matching ``sha256``."""
    path = Path(path)
    fix = "rebuild it (register the model again, or profile the reference with 'driftloop monitor --reference R --save-profile P')"
    if not path.is_file():
        raise DataError(f"reference profile {str(path)!r} does not exist", fix=fix)
    actual = file_sha256(path)
    if sha256 is not None and actual != sha256:
        raise DataError(f"reference profile {str(path)!r} does not match the SHA-256 recorded for it; refusing to use it", fix=fix)
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
            if manifest.get("format") != FORMAT:
                raise DataError(f"reference profile {str(path)!r} has format {manifest.get('format')!r}, expected {FORMAT}", fix=fix)
            scopes: dict[str | None, ScopeProfile] = {}
            for i, entry in enumerate(manifest["scopes"]):
                scope = ScopeProfile(rows=int(entry["rows"]), labelled=int(entry["labelled"]))
                for j, (col, n_nan) in enumerate(entry["numeric"]):
                    scope.numeric[col] = (data[f"s{i}n{j}"], int(n_nan))
                for j, (col, n_missing) in enumerate(entry["categorical"]):
                    keys, values = data[f"s{i}c{j}k"].tolist(), data[f"s{i}c{j}v"].tolist()
                    scope.categorical[col] = (dict(zip(keys, values, strict=True)), int(n_missing))
                scopes[entry["segment"]] = scope
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"reference profile {str(path)!r} is not a driftloop profile ({exc.__class__.__name__}: {exc})", fix=fix) from None
    return ReferenceProfile(scopes, manifest["window"], manifest.get("segment_column"), actual)


__all__ = ["ReferenceProfile", "ScopeProfile", "file_sha256", "load_profile"]
