"""The traffic backend interface the canary controller drives.

Two implementations: :class:`serving.canary.local.LocalBackend` (the local router and
KServe ModelServer processes) and :class:`serving.canary.k8s.KubernetesBackend` (patches an
InferenceService's ``spec.predictor.canaryTrafficPercent``). The controller only ever calls
these methods, so the same analysis runs on a laptop and on a cluster.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class TrafficBackend(Protocol):
    """Moves traffic between the champion and a challenger."""

    def deploy_challenger(self, model_uri: str) -> None:
        """Start serving ``model_uri`` next to the champion with 0% of the traffic."""

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until champion and challenger serve; raise ServiceUnavailable on timeout."""

    def set_traffic(self, percent: int) -> None:
        """Send ``percent`` % of requests to the challenger."""

    def current_traffic(self) -> int:
        """The challenger's current share in percent."""

    def promote(self) -> None:
        """Make the challenger the champion with 100% of the traffic."""

    def rollback(self) -> None:
        """Send all traffic back to the champion and retire the challenger."""

    def metrics_targets(self) -> list[str]:
        """Base URLs whose /metrics describe the two arms (empty on a cluster: use Prometheus)."""


def check_percent(percent: int) -> int:
    """Reject a traffic share outside 0..100.

    >>> check_percent(25)
    25
    """
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        from components.errors import ConfigError

        raise ConfigError(f"canaryTrafficPercent {percent!r} is not an integer in 0..100", fix="use rollout.steps like [10, 25, 50, 100]")
    return percent
