"""Repair a half-done alias move from the audit trail and from what the service serves.

Every alias move records an ``intent`` audit entry before its first MLflow call and its
own entry after the last (:mod:`components.registry.aliases`). :func:`pending_intent` finds
an intent with no completion; :func:`reconcile` completes it, then makes the registry
agree with the rollout record the service keeps (``served``: its phase, champion and
challenger), so serving and registry agree after a crash at any point.

>>> events = [{"event": "intent", "action": "promote", "alias": "champion", "version": 3, "previous": 2, "seq": 1},
...           {"event": "promote", "alias": "champion", "version": 3, "previous": 2, "seq": 2},
...           {"event": "intent", "action": "promote", "alias": "champion", "version": 4, "previous": 3, "seq": 3}]
>>> pending_intent(events)["version"]
4
>>> pending_intent(events[:2]) is None
True
"""

from __future__ import annotations

from typing import Any

from components.registry.aliases import alias_for
from components.registry.store import CHALLENGER, CHAMPION


def pending_intent(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last intent that no later move completed (same alias, version and previous), or None."""
    pending: dict[str, Any] | None = None
    for e in events:
        if e["event"] == "intent":
            pending = e
        elif pending is not None and (e["alias"], e["version"], e["previous"]) == (pending["alias"], pending["version"], pending["previous"]):
            pending = None
    return pending


def reconcile(registry: Any, model: str, served: dict[str, Any] | None = None, actor: str = "driftloop-reconcile") -> list[str]:
    """Complete a half-done alias move, then align the aliases with ``served``; returns what was done.

    ``registry`` is a :class:`components.registry.ModelRegistry`. ``served`` is the
    service's rollout record (``phase``, ``champion``, ``challenger``): after a promotion
    (``promoting``/``promoted``) the challenger must be the champion; after a rollback
    (``rolling_back``/``rolled_back``) the rolled-back version must not stay challenger
    and the champion must be the one the service went back to. An empty list: nothing
    needed repair.
    """
    done: list[str] = []
    intent = pending_intent(registry.history(model, intents=True))
    if intent is not None:
        done.append(_complete(registry, model, intent, actor))
    if served:
        done += _align(registry, model, served, actor)
    return done


def _complete(registry: Any, model: str, intent: dict[str, Any], actor: str) -> str:
    action, version, previous = intent.get("action"), intent["version"], intent["previous"]
    reason = f"reconcile: complete the interrupted {action} of {intent['at']} ({intent['reason']})"
    cohort = intent.get("cohort")  # a cohort specialist's move: its own aliases (components.registry.aliases)
    if action == "retire":
        registry.retire(model, cohort, actor=actor, reason=reason)
        return f"completed retire of the {cohort} specialist version {previous}"
    if action == "set_challenger":
        registry.set_challenger(model, version, actor=actor, reason=reason, cohort=cohort)
        return f"completed set_challenger -> version {version}"
    if action == "rollback" and intent["alias"] == alias_for(CHALLENGER, cohort):
        registry.rollback(model, actor=actor, reason=reason, version=previous, cohort=cohort)
        return f"completed rollback of challenger version {previous}"
    # a promotion, or a champion rollback (a promotion back to the earlier champion)
    registry.promote(model, version, actor=actor, reason=reason, previous=previous, cohort=cohort)
    return f"completed {action}: champion -> version {version} (was {previous})"


def _align(registry: Any, model: str, served: dict[str, Any], actor: str) -> list[str]:
    phase, champion, challenger = served.get("phase"), int(served["champion"]), int(served["challenger"])
    current = registry.get(model, CHAMPION)
    current_v = current.version if current is not None else None
    if phase in ("promoting", "promoted") and current_v != challenger:
        registry.promote(model, challenger, actor=actor, reason=f"reconcile: the service serves version {challenger} (rollout {phase})",
                         previous=champion if current_v == challenger else current_v)
        return [f"promoted version {challenger}: the service serves it"]
    if phase in ("rolling_back", "rolled_back"):
        out = []
        alias = registry.get(model, CHALLENGER)
        if alias is not None and alias.version == challenger:
            registry.rollback(model, actor=actor, reason=f"reconcile: the service rolled version {challenger} back", version=challenger)
            out.append(f"dropped challenger alias from rolled-back version {challenger}")
        if current_v != champion:
            registry.promote(model, champion, actor=actor, reason=f"reconcile: the service serves version {champion} after a rollback",
                             previous=current_v)
            out.append(f"champion -> version {champion}: the service went back to it")
        return out
    return []
