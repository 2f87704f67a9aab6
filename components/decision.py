"""From fired monitors to one decision: do nothing, retrain (with a strategy) or alert.

The decision is a pure function of the policy, the monitor entries, the model version and
the monitored window, so the same run always gives the same decision and the same
``idempotency_key``. :class:`DecisionLedger` remembers keys already acted on, so a decision
is never acted on twice (a re-run of the same window, a retried pipeline step).

>>> from components.policy import Policy
>>> policy = Policy.model_validate({"model": "churn", "entity": "id", "label": "churned", "features": ["tenure"],
...     "monitors": [{"name": "accuracy_floor", "type": "performance", "metric": "accuracy", "min": 0.85}],
...     "actions": [{"when": ["accuracy_floor"], "strategy": "full"}]})
>>> monitors = [{"name": "accuracy_floor", "type": "performance", "fired": True,
...              "summary": "accuracy 0.81 < 0.85 (n=2400)", "results": []}]
>>> d = decide(policy, monitors, model_version="3", window={"start": "2025-08-01", "end": "2025-08-31"})
>>> d.action, d.strategy, d.reasons
('retrain', 'full', ('accuracy_floor: accuracy 0.81 < 0.85 (n=2400)',))
>>> d.idempotency_key == decide(policy, monitors, "3", {"start": "2025-08-01", "end": "2025-08-31"}).idempotency_key
True
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.errors import ServiceUnavailable
from components.policy import Policy

ACTIONS = ("none", "retrain", "alert")
_ACTION_RANK = {"retrain": 0, "alert": 1}  # retrain beats alert


@dataclass(frozen=True)
class Decision:
    """What to do about one monitoring run, and why.

    ``strategy``, ``window`` (training window, e.g. ``"48h"``), ``cohort`` and ``upweight``
    apply to retraining; ``min_rows`` is the emergency guard. ``fired`` lists every monitor
    that fired; ``triggered_by`` the ones the chosen action names.
    """

    action: str
    strategy: str | None
    window: str | None
    cohort: str | None
    reasons: tuple[str, ...]
    fired: tuple[str, ...]
    triggered_by: tuple[str, ...]
    model: str
    model_version: str | None
    data_window: tuple[str | None, str | None]
    idempotency_key: str
    upweight: float | None = None
    min_rows: int | None = None
    priority: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (tuples become lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Decision:
        """Rebuild a decision from :meth:`to_dict` output."""
        tuples = {"reasons", "fired", "triggered_by", "data_window"}
        fields = cls.__dataclass_fields__
        kwargs: dict[str, Any] = {k: tuple(v) if k in tuples and v is not None else v for k, v in raw.items() if k in fields}
        return cls(**kwargs)


def idempotency_key(model: str, model_version: str | None, data_window: tuple[str | None, str | None],
                    action: str, strategy: str | None, window: str | None, cohort: str | None) -> str:
    """A stable hash of what makes two decisions "the same one".

    >>> idempotency_key("churn", "3", ("2025-08-01", "2025-08-31"), "retrain", "full", None, None)[:12]
    '0de6419dc763'
    """
    payload = json.dumps([model, model_version, list(data_window), action, strategy, window, cohort])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def decide(policy: Policy, report_monitors: Sequence[dict[str, Any]], model_version: str | None,
           window: dict[str, Any] | None) -> Decision:
    """Choose the action for the monitors that fired.

    Among the policy's actions whose ``when`` names a fired monitor, retrain beats alert,
    then the highest ``priority`` wins, then the first in policy order. Fired monitors
    that no action names still appear in ``fired`` and ``reasons`` but do not act.
    """
    by_name = {m["name"]: m for m in report_monitors}
    fired = tuple(m["name"] for m in report_monitors if m.get("fired"))
    reasons = tuple(f"{name}: {by_name[name].get('summary') or 'fired'}" for name in fired)
    data_window = (_str_or_none((window or {}).get("start")), _str_or_none((window or {}).get("end")))

    matching = [(i, a) for i, a in enumerate(policy.actions) if set(a.when) & set(fired)]
    if not matching:
        key = idempotency_key(policy.model, model_version, data_window, "none", None, None, None)
        return Decision("none", None, None, None, reasons, fired, (), policy.model, model_version, data_window, key)

    _, chosen = min(matching, key=lambda ia: (_ACTION_RANK[ia[1].action], -ia[1].priority, ia[0]))
    triggered = tuple(n for n in fired if n in chosen.when)
    if chosen.action == "alert":
        key = idempotency_key(policy.model, model_version, data_window, "alert", None, None, None)
        return Decision("alert", None, None, None, reasons, fired, triggered, policy.model, model_version,
                        data_window, key, priority=chosen.priority)

    cohort = chosen.cohort or (_cohort_from_monitors(policy, [by_name[n] for n in triggered]) if chosen.strategy == "cohort" else None)
    key = idempotency_key(policy.model, model_version, data_window, "retrain", chosen.strategy, chosen.window, cohort)
    return Decision("retrain", chosen.strategy, chosen.window, cohort, reasons, fired, triggered, policy.model,
                    model_version, data_window, key, upweight=chosen.upweight,
                    min_rows=chosen.min_rows if chosen.strategy == "emergency" else None, priority=chosen.priority)


def _cohort_from_monitors(policy: Policy, monitors: list[dict[str, Any]]) -> str | None:
    """The cohort a fired monitor names: the earliest-detected drifting segment.

    Sequential monitors come first (they test cohorts by design), then any other monitor
    whose drifting results carry a segment. Ties break on the segment name so the choice
    is deterministic.
    """
    ordered = sorted(monitors, key=lambda m: m.get("type") != "sequential")
    for m in ordered:
        hits = [r for r in m.get("results", []) if r.get("drift") and r.get("segment")]
        if hits:
            first = min(hits, key=lambda r: (r.get("detected_at") is None, r.get("detected_at") or 0, str(r["segment"])))
            return str(first["segment"])
    return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


LEDGER_LEASE_SECONDS = 6 * 3600.0  # a claim whose retrain never finished is claimable again after this


class DecisionLedger:
    """Decisions acted on, keyed by ``idempotency_key``: SQLite at a path, or PostgreSQL at a URL.

    A retrain goes ``claim`` -> (train, register) -> ``mark_done``. The claim is an atomic
    insert on the primary key, so two runs of the same window cannot both train; a claim
    that never reached ``mark_done`` (the training failed) expires after ``lease_seconds``
    or on :meth:`release`, and the window can be retrained. A done decision is never
    claimed again. PostgreSQL (``DRIFTLOOP_LEDGER_URL``) is the shared ledger of a cluster,
    where every pod has its own filesystem.

    >>> import tempfile
    >>> from components.policy import Policy
    >>> policy = Policy.model_validate({"model": "m", "entity": "id", "label": "y", "features": ["x"],
    ...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85}],
    ...     "actions": [{"when": ["acc"]}]})
    >>> ledger = DecisionLedger(Path(tempfile.mkdtemp()) / "decisions.db")
    >>> d = decide(policy, [{"name": "acc", "fired": True, "summary": "x"}], "1", {})
    >>> ledger.seen(d.idempotency_key), ledger.claim(d), ledger.claim(d), ledger.state(d.idempotency_key)
    (False, True, False, 'claimed')
    >>> ledger.release(d.idempotency_key), ledger.claim(d), ledger.mark_done(d.idempotency_key), ledger.release(d.idempotency_key), ledger.claim(d)
    (True, True, True, False, False)
    """

    def __init__(self, path: str | Path, *, lease_seconds: float = LEDGER_LEASE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.url = str(path) if str(path).startswith(("postgresql://", "postgres://")) else ""
        self.path = None if self.url else Path(path)
        self.lease_seconds, self.clock = lease_seconds, clock
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS decisions (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                "model_version TEXT, action TEXT NOT NULL, strategy TEXT, recorded_at TEXT NOT NULL, decision TEXT NOT NULL)"
            )
            columns = self._columns(con)
            # Ledgers written before claims had states: each row there was acted on (done).
            if "state" not in columns:
                con.execute("ALTER TABLE decisions ADD COLUMN state TEXT NOT NULL DEFAULT 'done'")
            if "claimed_at" not in columns:
                con.execute("ALTER TABLE decisions ADD COLUMN claimed_at DOUBLE PRECISION NOT NULL DEFAULT 0")

    def _columns(self, con: Any) -> set[str]:
        if self.url:
            rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'decisions'").fetchall()
            return {r[0] for r in rows}
        return {r[1] for r in con.execute("PRAGMA table_info(decisions)").fetchall()}

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.url:
            import psycopg

            try:
                pg = psycopg.connect(self.url, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise ServiceUnavailable(f"decision ledger at DRIFTLOOP_LEDGER_URL is unreachable: {str(exc).strip().splitlines()[0]}",
                                   fix="check DRIFTLOOP_LEDGER_URL (postgresql://user:password@host:5432/db) and that PostgreSQL is running") from None
            try:
                with pg:  # commits on success, rolls back on error
                    yield _Placeholders(pg)
            finally:
                pg.close()
            return
        con = sqlite3.connect(self.path, timeout=30)  # type: ignore[arg-type]
        try:
            with con:
                yield con
        finally:
            con.close()

    def state(self, key: str) -> str | None:
        """``"claimed"``, ``"done"``, ``"released"`` or None (never claimed)."""
        with self._connect() as con:
            row = con.execute("SELECT state FROM decisions WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def seen(self, key: str) -> bool:
        """Whether a decision with this key is claimed or done (not to be acted on now)."""
        return self.state(key) in ("claimed", "done")

    def claim(self, decision: Decision) -> bool:
        """Claim the decision for acting on it; ``False`` if it is done or claimed by a live lease."""
        now = self.clock()
        row = (decision.idempotency_key, decision.model, decision.model_version, decision.action, decision.strategy,
               datetime.now(UTC).isoformat(), json.dumps(decision.to_dict()), now)
        with self._connect() as con:
            cur = con.execute("INSERT INTO decisions (key, model, model_version, action, strategy, recorded_at, decision, state, claimed_at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, 'claimed', ?) ON CONFLICT (key) DO NOTHING", row)
            if cur.rowcount == 1:
                return True
            # Take over a released claim or one whose lease ran out (its training died).
            cur = con.execute("UPDATE decisions SET state = 'claimed', claimed_at = ?, recorded_at = ? WHERE key = ? "
                              "AND (state = 'released' OR (state = 'claimed' AND claimed_at < ?))",
                              (now, row[5], decision.idempotency_key, now - self.lease_seconds))
            return cur.rowcount == 1

    def record(self, decision: Decision) -> bool:
        """Claim the decision (the name before claims had states); ``False`` if it may not be acted on."""
        return self.claim(decision)

    def mark_done(self, key: str) -> bool:
        """The retrain of this claim happened (a model was registered); it is never claimed again."""
        with self._connect() as con:
            return con.execute("UPDATE decisions SET state = 'done' WHERE key = ? AND state <> 'done'", (key,)).rowcount == 1

    def release(self, key: str) -> bool:
        """Give a claim back (its retrain failed) so the next run of the window retrains; a done one stays done."""
        with self._connect() as con:
            return con.execute("UPDATE decisions SET state = 'released' WHERE key = ? AND state = 'claimed'", (key,)).rowcount == 1

    def get(self, key: str) -> Decision | None:
        """The recorded decision with this key, if any."""
        with self._connect() as con:
            row = con.execute("SELECT decision FROM decisions WHERE key = ?", (key,)).fetchone()
        return Decision.from_dict(json.loads(row[0])) if row else None


class _Placeholders:
    """A psycopg connection that takes SQLite's ``?`` placeholders, so both ledgers share their SQL."""

    def __init__(self, con: Any) -> None:
        self._con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._con.execute(sql.replace("?", "%s"), params)


def open_ledger(settings: Any) -> DecisionLedger:
    """The ledger the settings name: PostgreSQL at ``ledger_url`` when set, else SQLite in the work directory.

    >>> from components.settings import Settings
    >>> open_ledger(Settings.from_env({"DRIFTLOOP_WORKDIR": "/tmp/dl-doc"})).path.as_posix()
    '/tmp/dl-doc/decisions.db'
    """
    return DecisionLedger(settings.ledger_url or settings.workdir / "decisions.db")


def emergency_decision(policy: Policy, model_version: str | None, window: dict[str, Any], fired: Sequence[str]) -> Decision:
    """A retrain decision with strategy ``emergency`` from a manual trigger.

    The policy's emergency action gives the training window and ``min_rows``; without one,
    the training set's default (ten policy periods) applies.

    >>> from components.policy import resolve_policy
    >>> d = emergency_decision(resolve_policy("fraud"), "4", {"start": "a", "end": "b"}, [])
    >>> d.action, d.strategy, d.window, d.min_rows, d.reasons
    ('retrain', 'emergency', '48h', 2000, ('manual emergency trigger',))
    """
    action = next((a for a in policy.actions if a.action == "retrain" and a.strategy == "emergency"), None)
    data_window = (_str_or_none(window.get("start")), _str_or_none(window.get("end")))
    training_window = action.window if action else None
    key = idempotency_key(policy.model, model_version, data_window, "retrain", "emergency", training_window, None)
    reasons = ("manual emergency trigger", *(f"{n}: fired" for n in fired))
    return Decision("retrain", "emergency", training_window, None, reasons, tuple(fired), (), policy.model, model_version, data_window, key,
                    min_rows=action.min_rows if action else None, priority=action.priority if action else None)


def decide_once(policy: Policy, report: Any, ledger: DecisionLedger, emergency: bool = False,
                upstream_workdir: Path | None = None) -> tuple[Decision, bool]:
    """The decision of a monitor report (a :class:`~components.monitor.results.MonitorReport`) and whether it is new.

    A retrain is claimed in ``ledger`` once: a repeat of the same decision returns
    ``fresh=False`` and must not be acted on. ``emergency`` (a manual trigger) retrains now
    with the policy's emergency action on the newest data, whatever the monitors said; it
    is still claimed once per monitored window. The claim becomes final with
    :meth:`DecisionLedger.mark_done` once the model is registered. With ``upstream_workdir``,
    drift found upstream in a feature view this model reads (:mod:`components.upstream`) is
    listed among the reasons, and acknowledged once a retrain is claimed.

    >>> import tempfile
    >>> from components.monitor.results import MonitorReport
    >>> from components.policy import resolve_policy
    >>> report = MonitorReport("fraud", "3", {"start": "a", "end": "b"}, [], {}, "now")
    >>> ledger = DecisionLedger(Path(tempfile.mkdtemp()) / "decisions.db")
    >>> [decide_once(resolve_policy("fraud"), report, ledger, emergency=True)[1] for _ in range(2)]
    [True, False]
    """
    if emergency:
        decision = emergency_decision(policy, report.model_version, report.window, report.fired_monitors())
    elif report.decision.get("idempotency_key"):
        decision = Decision.from_dict(report.decision)
    else:
        decision = decide(policy, report.monitors, report.model_version, report.window)
    if upstream_workdir is not None:
        from components.policy import UPSTREAM_DRIFT
        from components.upstream import acknowledge_upstream, upstream_reasons

        upstream = upstream_reasons(policy.model, upstream_workdir)
        if upstream and not emergency:
            # upstream drift joins the fired monitors: its reason is listed, and an action whose
            # `when` names upstream_feature_drift may act on it alone (the policy decides)
            pseudo = {"name": UPSTREAM_DRIFT, "type": "upstream", "fired": True, "summary": "; ".join(upstream)}
            decision = decide(policy, [*report.monitors, pseudo], report.model_version, report.window)
        elif upstream:
            decision = replace(decision, reasons=(*decision.reasons, *upstream))
    if decision.action != "retrain":
        return decision, True
    fresh = ledger.claim(decision)
    if fresh and upstream_workdir is not None:
        acknowledge_upstream(policy.model, upstream_workdir)
    return decision, fresh


def decision_markdown(decision: Decision, fresh: bool) -> str:
    """The decision and its reasons as Markdown (the KFP dashboard's decision panel).

    >>> policy = Policy.model_validate({"model": "m", "entity": "id", "label": "y", "features": ["x"],
    ...     "monitors": [{"name": "acc", "type": "performance", "metric": "accuracy", "min": 0.85}],
    ...     "actions": [{"when": ["acc"], "strategy": "full"}]})
    >>> d = decide(policy, [{"name": "acc", "fired": True, "summary": "accuracy 0.8 < 0.85"}], "1", {})
    >>> print(decision_markdown(d, fresh=True).splitlines()[0])
    # Decision for m: retrain (full)
    >>> "Already acted on" in decision_markdown(d, fresh=False)
    True
    """
    head = f"# Decision for {decision.model}: {decision.action}" + (f" ({decision.strategy})" if decision.strategy else "")
    lines = [head, ""]
    if not fresh:
        lines += [f"Already acted on (key `{decision.idempotency_key}`): not retraining again.", ""]
    lines += [f"- model version: {decision.model_version or '-'}", f"- data window: {decision.data_window[0]} .. {decision.data_window[1]}"]
    if decision.window:
        lines.append(f"- training window: {decision.window}")
    if decision.cohort:
        lines.append(f"- cohort: {decision.cohort}")
    lines += ["", "## Reasons", ""] + ([f"- {r}" for r in decision.reasons] or ["- no monitor fired"])
    return "\n".join(lines) + "\n"
