"""Tell people about a decision: a Slack-compatible incoming-webhook message.

The webhook is ``policy.alerting.webhook`` or else ``Settings.webhook_url``; a message goes
out only for the actions listed in ``policy.alerting.on``. A webhook that is down or
answers with an error is logged as a warning and recorded in the report's
``notifications``; it never stops the run.

>>> from components.decision import Decision
>>> d = Decision("retrain", "full", None, None, ("accuracy_floor: accuracy 0.81 < 0.85",), ("accuracy_floor",),
...              ("accuracy_floor",), "churn", "3", ("2025-08-01", "2025-08-31"), "k")
>>> msg = slack_message(d, report_link="file:///tmp/report.html")
>>> msg["text"]
'driftloop churn v3: retrain (full)'
>>> msg["blocks"][1]["text"]["text"]
'• accuracy_floor: accuracy 0.81 < 0.85'
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

from components.decision import Decision
from components.policy import Policy
from components.settings import Settings

log = logging.getLogger(__name__)


def slack_message(decision: Decision, report_link: str | None = None) -> dict[str, Any]:
    """A Slack ``{"text", "blocks"}`` payload with the decision, its reasons and the report link."""
    version = f" v{decision.model_version}" if decision.model_version else ""
    what = decision.action
    if decision.strategy:
        what += f" ({decision.strategy}" + (f", window {decision.window}" if decision.window else "") + (
            f", cohort {decision.cohort}" if decision.cohort else "") + ")"
    title = f"driftloop {decision.model}{version}: {what}"
    reasons = "\n".join(f"• {r}" for r in decision.reasons) or "no monitor fired"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": reasons[:3000]}},
    ]
    window = " to ".join(w for w in decision.data_window if w)
    context = [f"window {window}" if window else "", f"key {decision.idempotency_key[:12]}"]
    if report_link:
        context.append(f"report: {report_link}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(c for c in context if c)}]})
    return {"text": title, "blocks": blocks}


def webhook_for(policy: Policy, settings: Settings | None = None) -> str | None:
    """The webhook URL to use: the policy's, else the settings', else none."""
    return policy.alerting.webhook or (settings.webhook_url if settings else "") or None


def redact(url: str) -> str:
    """A webhook URL without its secret path, safe to store in a report.

    >>> redact("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/...'
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]  # never keep credentials
    except ValueError:
        return "<malformed URL>"
    return f"{parts.scheme}://{netloc}/..."


def webhook_problem(url: str, allow_private: bool = False,
                    resolve: Any = socket.getaddrinfo) -> str | None:
    """Why ``url`` may not receive a webhook, or ``None`` when it may.

    A webhook must be ``https`` on a public address; ``http`` and private, loopback,
    link-local or reserved addresses (the cluster's own services, the cloud metadata
    endpoint) only when the policy sets ``alerting.allow_private_webhook``. Every address the
    host resolves to is checked, so a public name pointing inside is refused too.

    >>> webhook_problem("https://10.0.0.5/hook", resolve=None)
    'webhook host 10.0.0.5 is a private address; set alerting.allow_private_webhook: true if that is intended'
    >>> webhook_problem("http://127.0.0.1:9/hook", allow_private=True) is None
    True
    >>> webhook_problem("ftp://hooks.example.com/x", resolve=None)
    "webhook URL scheme 'ftp' is not https"
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"webhook URL is malformed: {exc}"
    if parts.scheme not in ("https", "http"):
        return f"webhook URL scheme {parts.scheme!r} is not https"
    if parts.scheme == "http" and not allow_private:
        return "webhook URL is plain http; use https, or set alerting.allow_private_webhook: true for a receiver inside your network"
    if not host:
        return "webhook URL has no host"
    if allow_private:
        return None
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return f"webhook host {host} is a private address; set alerting.allow_private_webhook: true if that is intended"
        if resolve is None:
            return None
        try:
            infos = resolve(host, port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            return f"webhook host {host} does not resolve ({exc})"
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        if not ip.is_global:
            return f"webhook host {host} is a private address; set alerting.allow_private_webhook: true if that is intended"
    return None


def notify(policy: Policy, decision: Decision, report_link: str | None = None, settings: Settings | None = None,
           timeout: float = 5.0) -> dict[str, Any]:
    """Post the decision to the webhook if the policy asks for it; never raises.

    Returns a record for the report: ``{"channel": "webhook", "status": "sent" | "skipped" |
    "refused" | "failed", "url": <redacted>, "detail": ...}``; "refused" when
    :func:`webhook_problem` finds the URL unsafe (nothing is sent).
    """
    import httpx

    url = webhook_for(policy, settings)
    if not url:
        return {"channel": "webhook", "status": "skipped", "url": None, "detail": "no webhook configured"}
    if decision.action not in policy.alerting.on:
        return {"channel": "webhook", "status": "skipped", "url": redact(url), "detail": f"action {decision.action!r} not in alerting.on"}
    problem = webhook_problem(url, policy.alerting.allow_private_webhook)
    if problem:
        log.warning(problem)
        return {"channel": "webhook", "status": "refused", "url": redact(url), "detail": problem}
    try:  # redirects are not followed: a public hook must not bounce the post inside
        response = httpx.post(url, json=slack_message(decision, report_link), timeout=timeout, follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        detail = f"webhook {redact(url)} unreachable: {type(exc).__name__}: {exc}"
        log.warning(detail)
        return {"channel": "webhook", "status": "failed", "url": redact(url), "detail": detail}
    if response.status_code >= 300:
        detail = f"webhook {redact(url)} answered HTTP {response.status_code}: {response.text[:200]}"
        log.warning(detail)
        return {"channel": "webhook", "status": "failed", "url": redact(url), "detail": detail}
    return {"channel": "webhook", "status": "sent", "url": redact(url), "detail": f"HTTP {response.status_code}"}
