"""The webhook: a Slack-compatible message reaches a real HTTP server; a dead one never crashes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.decision import decide
from components.notify import notify
from components.policy import policy_from_dict
from components.settings import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration


class _Hook:
    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[dict] = []


@pytest.fixture
def hook() -> Iterator[tuple[str, _Hook]]:
    """A real HTTP server on localhost that records the JSON bodies posted to it."""
    state = _Hook(200)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.bodies.append(json.loads(body))
            self.send_response(state.status)
            self.end_headers()
            self.wfile.write(b"ok" if state.status < 300 else b"no_service")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/secret", state
    finally:
        server.shutdown()
        server.server_close()


def _policy(webhook: str | None, on: list[str] | None = None, allow_private: bool = True):
    """A policy posting to ``webhook``; the test receiver is on 127.0.0.1, so private is allowed by default."""
    return policy_from_dict({
        "model": "churn", "entity": "id", "label": "y", "features": ["x"],
        "monitors": [{"name": "accuracy_floor", "type": "performance", "metric": "accuracy", "min": 0.85}],
        "actions": [{"when": ["accuracy_floor"], "strategy": "full"}],
        "alerting": {"webhook": webhook, "allow_private_webhook": allow_private} | ({"on": on} if on is not None else {}),
    })


def _retrain(policy):
    monitors = [{"name": "accuracy_floor", "type": "performance", "fired": True,
                 "summary": "accuracy 0.81 < 0.85 (n=2400, 95% CI 0.79-0.83)", "results": []}]
    return decide(policy, monitors, "7", {"start": "2025-08-01", "end": "2025-08-31"})


def test_message_reaches_the_webhook_with_reasons_and_report_link(hook) -> None:
    url, state = hook
    policy = _policy(url)
    record = notify(policy, _retrain(policy), report_link="/tmp/out/report.html")
    assert record["status"] == "sent"
    assert "secret" not in record["url"], "the webhook's secret path must not be written to reports"
    (body,) = state.bodies
    assert body["text"] == "driftloop churn v7: retrain (full)"
    flat = json.dumps(body["blocks"])
    assert "accuracy 0.81 < 0.85 (n=2400, 95% CI 0.79-0.83)" in flat
    assert "/tmp/out/report.html" in flat


def test_settings_webhook_is_used_when_the_policy_has_none(hook) -> None:
    url, state = hook
    policy = _policy(None)
    assert notify(policy, _retrain(policy), settings=Settings(webhook_url=url))["status"] == "sent"
    assert len(state.bodies) == 1


def test_actions_not_in_alerting_on_are_not_sent(hook) -> None:
    url, state = hook
    policy = _policy(url, on=["alert"])
    record = notify(policy, _retrain(policy))
    assert record["status"] == "skipped" and "retrain" in record["detail"]
    assert state.bodies == []


def test_webhook_error_status_is_recorded_not_raised(hook, caplog: pytest.LogCaptureFixture) -> None:
    url, state = hook
    state.status = 500
    policy = _policy(url)
    record = notify(policy, _retrain(policy))
    assert record["status"] == "failed" and "HTTP 500" in record["detail"]
    assert any("HTTP 500" in r.getMessage() for r in caplog.records)


def test_webhook_that_is_down_is_recorded_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    policy = _policy(url)
    record = notify(policy, _retrain(policy), timeout=2)
    assert record["status"] == "failed" and "unreachable" in record["detail"]
    assert any("unreachable" in r.getMessage() for r in caplog.records)


def test_private_webhook_is_refused_unless_the_policy_allows_it(hook, caplog: pytest.LogCaptureFixture) -> None:
    url, state = hook
    policy = _policy(url, allow_private=False)
    record = notify(policy, _retrain(policy))
    assert record["status"] == "refused" and "allow_private_webhook" in record["detail"]
    assert state.bodies == [], "nothing may be posted to a refused address"
    # the settings' webhook goes through the same check
    record = notify(_policy(None, allow_private=False), _retrain(policy), settings=Settings(webhook_url=url))
    assert record["status"] == "refused" and state.bodies == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "https://10.1.2.3/hook", "https://[::1]/hook",
                                 "https://localhost/hook", "http://hooks.slack.com/services/x"])
def test_unsafe_webhooks_are_refused_without_sending(url: str) -> None:
    policy = _policy(url, allow_private=False)
    record = notify(policy, _retrain(policy), timeout=1)
    assert record["status"] == "refused", record


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "hooks.slack.com/services/x", "https:///nohost"])
def test_policy_rejects_webhooks_that_are_not_http_urls(url: str) -> None:
    from components.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _policy(url)
    assert "alerting.webhook" in str(err.value)


def test_malformed_url_from_settings_is_recorded_not_raised() -> None:
    policy = _policy(None)
    record = notify(policy, _retrain(policy), settings=Settings(webhook_url="https://[bad/hook"))
    assert record["status"] in {"refused", "failed"} and record["detail"]
