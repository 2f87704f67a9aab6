"""Aliases ``champion`` and ``challenger`` (global and per cohort) and their audit trail.

Aliases move only through :meth:`Aliases.promote`, :meth:`~Aliases.set_challenger` and
:meth:`~Aliases.rollback`; every move is an audit tag on the registered model (who, why,
when), read back by :meth:`~Aliases.history`.

A move takes several MLflow calls, so each one first records an ``intent`` audit entry
(what it is about to do, and the champion it replaces) and finishes with the move's own
entry. An intent with no later entry for the same version is a half-done move:
:func:`components.registry.reconcile.reconcile` completes it.

A cohort specialist (a model trained on one cohort's rows) has its own pair,
``champion-<cohort>`` and ``challenger-<cohort>`` (:func:`alias_for`): every move takes
``cohort=`` and is audited like the global ones (the entry's ``alias`` is the cohort's
alias and it carries ``cohort``). :meth:`Aliases.retire` removes a specialist;
:meth:`Aliases.cohort_routes` lists the cohorts that have one; :class:`CohortView` is the
registry seen from one cohort (its champion falls back to the global one), which a
cohort canary drives exactly as the global canary drives the registry.

>>> alias_for("champion", None), alias_for("challenger", "casual")
('champion', 'challenger-casual')
>>> alias_for("champion", "new users")
Traceback (most recent call last):
...
components.errors.ConfigError: cohort 'new users' cannot name an MLflow alias (fix: use a cohort value of letters, digits, '_' and '-')
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from typing import Any

import pandas as pd

from components.errors import ConfigError, DataError
from components.registry.store import (
    AUDIT_PREFIX,
    CHALLENGER,
    CHAMPION,
    MlflowStore,
    ModelVersionInfo,
    _not_found,
    _now,
)


def alias_for(alias: str, cohort: str | None) -> str:
    """The alias name: ``champion`` / ``challenger`` globally, ``champion-<cohort>`` for a cohort's specialist."""
    if cohort is None:
        return alias
    if not _ALIAS_SAFE.fullmatch(str(cohort)):
        raise ConfigError(f"cohort {cohort!r} cannot name an MLflow alias", fix="use a cohort value of letters, digits, '_' and '-'")
    return f"{alias}-{cohort}"


_ALIAS_SAFE = re.compile(r"[A-Za-z0-9_-]+")


class Aliases(MlflowStore):
    """Move and audit the ``champion`` / ``challenger`` aliases (``cohort=``: that cohort's pair)."""

    def set_challenger(self, model: str, version: int, actor: str = "driftloop", reason: str = "", cohort: str | None = None) -> ModelVersionInfo:
        """Point ``challenger`` (or ``challenger-<cohort>``) at ``version``."""
        alias = alias_for(CHALLENGER, cohort)
        info = self._require(model, version)
        previous = self.get(model, alias)
        self._audit(model, "intent", alias, version, previous.version if previous else None, actor, f"set_challenger: {reason}", cohort)
        with self._service():
            self._client().set_registered_model_alias(model, alias, str(version))
            self._client().set_model_version_tag(model, str(version), f"driftloop.{alias}_since", _now())
        self._audit(model, "set_challenger", alias, version, previous.version if previous else None, actor, reason, cohort)
        return self._require(model, info.version)

    def promote(self, model: str, version: int | None = None, actor: str = "driftloop", reason: str = "",
                previous: int | None = None, cohort: str | None = None) -> ModelVersionInfo:
        """Make ``version`` (default: the challenger) the champion; the old champion keeps a tag.

        ``previous`` names the champion being replaced when the alias already moved (a
        half-done promotion being completed); by default it is the current champion.
        With ``cohort``, the cohort's pair moves and the global champion is never touched.
        """
        champ, chall = alias_for(CHAMPION, cohort), alias_for(CHALLENGER, cohort)
        if version is None:
            challenger = self.get(model, chall)
            if challenger is None:
                raise DataError(f"model {model!r} has no {chall} to promote", fix="pass --version or register a challenger first")
            version = challenger.version
        self._require(model, version)
        current = self.get(model, champ)
        old = self._require(model, previous) if previous is not None else current
        client = self._client()
        now = _now()
        self._audit(model, "intent", champ, version, old.version if old else None, actor, f"promote: {reason}", cohort)
        with self._service():
            client.set_registered_model_alias(model, champ, str(version))
            for k, v in {f"driftloop.{champ}_since": now, "driftloop.promoted_by": actor, "driftloop.promote_reason": reason}.items():
                client.set_model_version_tag(model, str(version), k, v)
            challenger = self.get(model, chall)
            if challenger is not None and challenger.version == version:
                client.delete_registered_model_alias(model, chall)
            if old is not None and old.version != version:
                for k, v in {f"driftloop.former_{champ}": "true", f"driftloop.{champ}_until": now, "driftloop.replaced_by": str(version)}.items():
                    client.set_model_version_tag(model, str(old.version), k, v)
        self._audit(model, "promote", champ, version, old.version if old else None, actor, reason, cohort)
        return self._require(model, version)

    def rollback(self, model: str, actor: str = "driftloop", reason: str = "", version: int | None = None,
                 cohort: str | None = None) -> ModelVersionInfo | None:
        """Drop the challenger; with none, restore the champion that the last promotion replaced.

        With ``version`` (a canary rolling back the version it rolled out), only that version
        is retired: a newer challenger registered meanwhile keeps its alias, and the champion
        is never touched. Returns the champion after the rollback (``None`` if there is none).
        With ``cohort``, the cohort's pair is meant.
        """
        champ, chall = alias_for(CHAMPION, cohort), alias_for(CHALLENGER, cohort)
        client = self._client()
        challenger = self.get(model, chall)
        now = _now()
        if version is not None and (challenger is None or challenger.version != version):
            self._require(model, version)
            with self._service():
                client.set_model_version_tag(model, str(version), "driftloop.rolled_back", now)
                client.set_model_version_tag(model, str(version), "driftloop.rollback_reason", reason)
            kept = f"; {chall} alias kept on newer version {challenger.version}" if challenger is not None else ""
            self._audit(model, "rollback", chall, challenger.version if challenger else None, version, actor, reason + kept, cohort)
            return self.get(model, champ)
        if challenger is not None:
            self._audit(model, "intent", chall, None, challenger.version, actor, f"rollback: {reason}", cohort)
            with self._service():
                client.delete_registered_model_alias(model, chall)
                client.set_model_version_tag(model, str(challenger.version), "driftloop.rolled_back", now)
                client.set_model_version_tag(model, str(challenger.version), "driftloop.rollback_reason", reason)
            self._audit(model, "rollback", chall, None, challenger.version, actor, reason, cohort)
            return self.get(model, champ)
        champion = self.get(model, champ)
        previous = next((e["previous"] for e in reversed(self.history(model)) if e["event"] == "promote" and e["alias"] == champ
                         and e["version"] == (champion.version if champion else None)), None)
        if champion is None or previous is None:
            raise DataError(f"model {model!r} has no {chall} and no earlier {champ} to roll back to", fix="check 'driftloop registry history --model " + model + "'")
        self._audit(model, "intent", champ, previous, champion.version, actor, f"rollback: {reason}", cohort)
        with self._service():
            client.set_registered_model_alias(model, champ, str(previous))
            client.set_model_version_tag(model, str(champion.version), "driftloop.rolled_back", now)
            client.set_model_version_tag(model, str(champion.version), "driftloop.rollback_reason", reason)
            client.set_model_version_tag(model, str(previous), f"driftloop.{champ}_since", now)
        self._audit(model, "rollback", champ, previous, champion.version, actor, reason, cohort)
        return self.get(model, champ)

    def retire(self, model: str, cohort: str, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo | None:
        """Retire the cohort's specialist: drop ``champion-<cohort>`` (and its challenger), so the cohort is served by the global champion.

        Returns the retired version (``None`` if the cohort had no specialist). The audit
        entry (event ``retire``) carries ``reason``.
        """
        champ, chall = alias_for(CHAMPION, cohort), alias_for(CHALLENGER, cohort)
        current = self.get(model, champ)
        if current is None:
            return None
        client = self._client()
        self._audit(model, "intent", champ, None, current.version, actor, f"retire: {reason}", cohort)
        with self._service():
            client.delete_registered_model_alias(model, champ)
            if self.get(model, chall) is not None:
                client.delete_registered_model_alias(model, chall)
            client.set_model_version_tag(model, str(current.version), "driftloop.retired", _now())
            client.set_model_version_tag(model, str(current.version), "driftloop.retire_reason", reason)
        self._audit(model, "retire", champ, None, current.version, actor, reason, cohort)
        return self._require(model, current.version)

    def cohort_routes(self, model: str) -> dict[str, int]:
        """``{cohort: version}`` for every cohort that has a specialist (a ``champion-<cohort>`` alias)."""
        with self._service():
            try:
                aliases = self._client().get_registered_model(model).aliases
            except Exception as exc:
                if _not_found(exc):
                    return {}
                raise
        prefix = f"{CHAMPION}-"
        return {alias.removeprefix(prefix): int(v) for alias, v in sorted(aliases.items()) if alias.startswith(prefix)}

    def serving(self, model: str, cohort: str | None) -> ModelVersionInfo | None:
        """The version that serves ``cohort``: its specialist if it has one, else the global champion."""
        if cohort is not None:
            specialist = self.get(model, alias_for(CHAMPION, cohort))
            if specialist is not None:
                return specialist
        return self.get(model, CHAMPION)

    def for_cohort(self, cohort: str) -> CohortView:
        """This registry seen from ``cohort`` (see :class:`CohortView`)."""
        return CohortView(self, cohort)

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

    def _audit(self, model: str, event: str, alias: str, version: int | None, previous: int | None, actor: str, reason: str,
               cohort: str | None = None) -> None:
        seq = time.time_ns()
        record = {"at": _now(), "seq": seq, "event": event, "alias": alias, "version": version, "previous": previous, "actor": actor, "reason": reason}
        if cohort is not None:
            record["cohort"] = cohort
        if event == "intent":  # the move about to be made: "promote: why" -> action "promote"
            record["action"] = reason.split(":", 1)[0]
        with self._service():
            self._client().set_registered_model_tag(model, f"{AUDIT_PREFIX}{seq:020d}.{uuid.uuid4().hex[:6]}", json.dumps(record))


class CohortView:
    """The registry seen from one cohort: what a cohort canary drives.

    ``get(model, "champion")`` is the version serving the cohort (its specialist, else the
    global champion), ``get(model, "challenger")`` the cohort's challenger; ``promote``,
    ``set_challenger`` and ``rollback`` move only the cohort's aliases, so a cohort canary
    never touches the global champion. Everything else is the registry's.
    """

    def __init__(self, registry: Aliases, cohort: str) -> None:
        alias_for(CHAMPION, cohort)  # refuse a cohort that cannot name an alias
        self.registry, self.cohort = registry, cohort

    def get(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The cohort's champion (falling back to the global one) or challenger; other aliases as they are."""
        if alias == CHAMPION:
            return self.registry.serving(model, self.cohort)
        return self.registry.get(model, alias_for(alias, self.cohort) if alias == CHALLENGER else alias)

    def resolve(self, model: str, ref: str | int) -> ModelVersionInfo:
        """As :meth:`MlflowStore.resolve`, with ``champion``/``challenger`` meaning the cohort's."""
        from components.model_uri import model_uri, parse_model_uri

        alias = parse_model_uri(model_uri(model, ref)).alias
        if alias in (CHAMPION, CHALLENGER):
            info = self.get(model, str(alias))
            if info is None:
                raise ConfigError(f"cohort {self.cohort!r} of {model!r} has no {alias_for(str(alias), self.cohort)} (and no global champion)",
                                  fix=f"register a specialist for the cohort (driftloop train --strategy cohort --cohort {self.cohort})")
            return info
        return self.registry.resolve(model, ref)

    def set_challenger(self, model: str, version: int, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo:
        """Point ``challenger-<cohort>`` at ``version``."""
        return self.registry.set_challenger(model, version, actor=actor, reason=reason, cohort=self.cohort)

    def promote(self, model: str, version: int | None = None, actor: str = "driftloop", reason: str = "") -> ModelVersionInfo:
        """Make ``version`` the cohort's champion (the global champion is untouched)."""
        return self.registry.promote(model, version, actor=actor, reason=reason, cohort=self.cohort)

    def rollback(self, model: str, actor: str = "driftloop", reason: str = "", version: int | None = None) -> ModelVersionInfo | None:
        """Roll the cohort's challenger (or specialist) back; returns what serves the cohort afterwards."""
        self.registry.rollback(model, actor=actor, reason=reason, version=version, cohort=self.cohort)
        return self.get(model, CHAMPION)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.registry, name)
