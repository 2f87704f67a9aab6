"""The contract every online drift detector follows (after river's ``base/drift_detector.py``).

``update(x)`` feeds one value and returns whether drift was detected at that value;
``drift_detected`` is read-only; ``_reset()`` owns all state. ``statistic`` and
``threshold`` expose the latest test statistic and its boundary, for traces and plots.
"""

from __future__ import annotations

import abc
import math


class DriftDetector(abc.ABC):
    """Base class: subclasses validate settings in ``__init__`` and call ``super().__init__()`` last."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Forget everything seen so far."""
        self._drift_detected = False
        self.n_seen = 0
        self.statistic: float = math.nan
        self.threshold: float = math.nan

    @property
    def drift_detected(self) -> bool:
        """Whether the last :meth:`update` detected drift."""
        return self._drift_detected

    @abc.abstractmethod
    def update(self, x: float) -> bool:
        """Feed one value (1 = the prediction was wrong); return :attr:`drift_detected`."""

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k not in ("n_seen", "statistic", "threshold"))
        return f"{type(self).__name__}({settings})"
