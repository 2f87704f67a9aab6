"""Aliases ``champion`` and ``challenger`` and their audit trail.

Aliases move only through :meth:`Aliases.promote`, :meth:`~Aliases.set_challenger` and
:meth:`~Aliases.rollback`; every move is an audit tag on the registered model (who, why,
when), read back by :meth:`~Aliases.history`.

A move takes several MLflow calls, so each one first records an ``intent`` audit entry
(what it is about to do, and the champion it replaces) and finishes with the move's own
entry. An intent with no later entry for the same version is a half-done move:
:func:`components.registry.reconcile.reconcile` completes it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pandas as pd

from components.errors import DataError
from components.registry.store import (
    AUDIT_PREFIX,
    CHALLENGER,
    CHAMPION,
    MlflowStore,
    ModelVersionInfo,
    _not_found,
    _now,
)


class Aliases(MlflowStore):
    """Move and audit the ``champion`` / ``challenger`` aliases."""

    def set_challenger(self, model: str, version: int, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo:
        """Point ``challenger`` at ``version``."""
        info = self._require(model, version)
        previous = self.get(model, CHALLENGER)
        self._audit(model, "intent", CHALLENGER, version, previous.version if previous else None, actor, f"set_challenger: {reason}")
        with self._service():
            self._client().set_registered_model_alias(model, CHALLENGER, str(version))
            self._client().set_model_version_tag(model, str(version), "driftloop.challenger_since", _now())
        self._audit(model, "set_challenger", CHALLENGER, version, previous.version if previous else None, actor, reason)
        return self._require(model, info.version)

    def promote(self, model: str, version: int | None = None, actor: str = "driftloop", reason: str = "",
                previous: int | None = None) -> ModelVersionInfo:
        """Make ``version`` (default: the challenger) the champion; the old champion keeps a tag.

        ``previous`` names the champion being replaced when the alias already moved (a
        half-done promotion being completed); by default it is the current champion.
        """
        if version is None:
            challenger = self.get(model, CHALLENGER)
            if challenger is None:
                raise DataError(f"model {model!r} has no challenger to promote", fix="pass --version or register a challenger first")
            version = challenger.version
        self._require(model, version)
        current = self.get(model, CHAMPION)
        old = self._require(model, previous) if previous is not None else current
        client = self._client()
        now = _now()
        self._audit(model, "intent", CHAMPION, version, old.version if old else None, actor, f"promote: {reason}")
        with self._service():
            client.set_registered_model_alias(model, CHAMPION, str(version))
            for k, v in {"driftloop.champion_since": now, "driftloop.promoted_by": actor, "driftloop.promote_reason": reason}.items():
                client.set_model_version_tag(model, str(version), k, v)
            challenger = self.get(model, CHALLENGER)
            if challenger is not None and challenger.version == version:
                client.delete_registered_model_alias(model, CHALLENGER)
            if old is not None and old.version != version:
                for k, v in {"driftloop.former_champion": "true", "driftloop.champion_until": now, "driftloop.replaced_by": str(version)}.items():
                    client.set_model_version_tag(model, str(old.version), k, v)
        self._audit(model, "promote", CHAMPION, version, old.version if old else None, actor, reason)
        return self._require(model, version)

    def rollback(self, model: str, actor: str = "driftloop", reason: str = "", version: int | None = None) -> ModelVersionInfo | None:
        """Drop the challenger; with none, restore the champion that the last promotion replaced.

        With ``version`` (a canary rolling back the version it rolled out), only that version
        is retired: a newer challenger registered meanwhile keeps its alias, and the champion
        is never touched. Returns the champion after the rollback (``None`` if there is none).
        """
        client = self._client()
        challenger = self.get(model, CHALLENGER)
        now = _now()
        if version is not None and (challenger is None or challenger.version != version):
            self._require(model, version)
            with self._service():
                client.set_model_version_tag(model, str(version), "driftloop.rolled_back", now)
                client.set_model_version_tag(model, str(version), "driftloop.rollback_reason", reason)
            kept = f"; challenger alias kept on newer version {challenger.version}" if challenger is not None else ""
            self._audit(model, "rollback", CHALLENGER, challenger.version if challenger else None, version, actor, reason + kept)
            return self.get(model, CHAMPION)
        if challenger is not None:
            self._audit(model, "intent", CHALLENGER, None, challenger.version, actor, f"rollback: {reason}")
            with self._service():
                client.delete_registered_model_alias(model, CHALLENGER)
                client.set_model_version_tag(model, str(challenger.version), "driftloop.rolled_back", now)
                client.set_model_version_tag(model, str(challenger.version), "driftloop.rollback_reason", reason)
            self._audit(model, "rollback", CHALLENGER, None, challenger.version, actor, reason)
            return self.get(model, CHAMPION)
        champion = self.get(model, CHAMPION)
        previous = next((e["previous"] for e in reversed(self.history(model)) if e["event"] == "promote" and e["version"] == (champion.version if champion else None)), None)
        if champion is None or previous is None:
            raise DataError(f"model {model!r} has no challenger and no earlier champion to roll back to", fix="check 'driftloop registry history --model " + model + "'")
        self._audit(model, "intent", CHAMPION, previous, champion.version, actor, f"rollback: {reason}")
        with self._service():
            client.set_registered_model_alias(model, CHAMPION, str(previous))
            client.set_model_version_tag(model, str(champion.version), "driftloop.rolled_back", now)
            client.set_model_version_tag(model, str(champion.version), "driftloop.rollback_reason", reason)
            client.set_model_version_tag(model, str(previous), "driftloop.champion_since", now)
        self._audit(model, "rollback", CHAMPION, previous, champion.version, actor, reason)
        return self.get(model, CHAMPION)

    def history(self, model: str, intents: bool = False) -> list[dict[str, Any]]:
        """Every alias move, oldest first: ``at, event, alias, version, previous, actor, reason``.

        ``intents=True`` includes the ``intent`` entries each move records before it starts.
        """
        with self._service():
            try:
                tags = self._client().get_registered_model(model).tags
            except Exception as exc:
                if _not_found(exc):
                    return []
                raise
        events = [json.loads(v) for k, v in tags.items() if k.startswith(AUDIT_PREFIX)]
        return sorted((e for e in events if intents or e["event"] != "intent"), key=lambda e: (e["seq"], e["at"]))

    def champion_at(self, model: str, when: str | datetime) -> int | None:
        """Which version served as champion at ``when`` (from the audit trail)."""
        at = pd.Timestamp(when)
        at = at.tz_localize("UTC") if at.tzinfo is None else at
        serving = None
        for event in self.history(model):
            if event["alias"] == CHAMPION and pd.Timestamp(event["at"]) <= at:
                serving = event["version"]
        return serving

    def _audit(self, model: str, event: str, alias: str, version: int | None, previous: int | None, actor: str, reason: str) -> None:
        seq = time.time_ns()
        record = {"at": _now(), "seq": seq, "event": event, "alias": alias, "version": version, "previous": previous, "actor": actor, "reason": reason}
        if event == "intent":  # the move about to be made: "promote: why" -> action "promote"
            record["action"] = reason.split(":", 1)[0]
        with self._service():
            self._client().set_registered_model_tag(model, f"{AUDIT_PREFIX}{seq:020d}.{uuid.uuid4().hex[:6]}", json.dumps(record))
