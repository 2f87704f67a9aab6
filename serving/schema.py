"""The request schema of a served model: which features are numeric and which categorical.

It comes from the policy (``features`` / ``categorical_features``) or, without one, from
the MLflow model signature. Validation names the instance and the field, so a client sees
``instances[2].tenure_months: expected a finite number, got 'abc'`` with HTTP 400.

>>> schema = FeatureSchema(numeric=("tenure_months",), categorical=("contract",))
>>> schema.validate([{"tenure_months": 3, "contract": "monthly", "customer_id": 7}])
[{'tenure_months': 3.0, 'contract': 'monthly'}]
>>> schema.validate([{"contract": "monthly"}])
Traceback (most recent call last):
...
ValueError: instances[0]: missing feature 'tenure_months'; send every feature in ['tenure_months', 'contract']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_NUMERIC_TYPES = {"double", "float", "long", "integer"}


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered numeric and categorical feature names."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @classmethod
    def from_policy(cls, policy: Any) -> FeatureSchema:
        """The schema a policy declares."""
        return cls(tuple(policy.features), tuple(policy.categorical_features))

    @classmethod
    def from_signature(cls, input_schema: Any) -> FeatureSchema:
        """The schema of an MLflow column-based signature (numbers vs strings)."""
        numeric: list[str] = []
        categorical: list[str] = []
        for col in input_schema.inputs:
            kind = str(getattr(col.type, "name", col.type)).lower()
            (numeric if kind in _NUMERIC_TYPES else categorical).append(col.name)
        return cls(tuple(numeric), tuple(categorical))

    def validate(self, instances: Any) -> list[dict[str, Any]]:
        """Check v1 ``instances`` and return them reduced to the model's features.

        Raises ``ValueError`` naming the instance index and field.
        """
        if not isinstance(instances, list) or not instances:
            raise ValueError("'instances' must be a non-empty list of {feature: value} objects")
        rows = []
        for i, inst in enumerate(instances):
            if not isinstance(inst, Mapping):
                raise ValueError(f"instances[{i}] must be an object of feature: value, got {type(inst).__name__}")
            rows.append(self._row(inst, f"instances[{i}]"))
        return rows

    def validate_columns(self, columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Check v2 named input tensors (one per feature) and return row dicts."""
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ValueError(f"inputs: missing feature tensor {missing[0]!r}; send one input per feature in {self.names}")
        lengths = {len(columns[n]) for n in self.names}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"inputs: every feature tensor must have the same non-zero length, got {sorted(lengths)}")
        n = lengths.pop()
        return [self._row({k: columns[k][i] for k in self.names}, f"row {i}") for i in range(n)]

    def _row(self, inst: Mapping[str, Any], where: str) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name in self.numeric:
            if name not in inst:
                raise ValueError(f"{where}: missing feature {name!r}; send every feature in {self.names}")
            value = inst[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{where}.{name}: expected a finite number, got {value!r}")
            row[name] = float(value)
        for name in self.categorical:
            if name not in inst:
                raise ValueError(f"{where}: missing feature {name!r}; send every feature in {self.names}")
            value = inst[name]
            if isinstance(value, bytes):
                value = value.decode()
            if not isinstance(value, str):
                raise ValueError(f"{where}.{name}: expected a string category, got {value!r}")
            row[name] = value
        return row
