"""HTTP probe against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from collectors.evidence import EvidenceRequest
from collectors.probe import SIGNALS, HttpSource, collect
from tests.support.http_server import Reply

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
HEALTH = {"status": "up", "checks": [{"name": "db", "status": "ok"}, {"name": "queue", "status": "down"}],
          "meta": {"version": "1.4.2", "replicas": 3, "ready": True}}


def _req(signal: str, **params: object) -> EvidenceRequest:
    return EvidenceRequest(signal=signal, params=params)


def _probe(url: str, *requests: EvidenceRequest, **settings: object):
    return collect(HttpSource(id="api", url=url, **settings), list(requests), now=NOW)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_one_request_answers_status_latency_and_nested_json_values(http_server):
    http_server.route("/health", Reply(200, HEALTH))
    result = _probe(
        http_server.url + "/health",
        _req("status"),
        _req("latency"),
        _req("json_value", path="checks.1.status"),
        _req("json_value", path="meta.replicas"),
        _req("json_value", path="meta"),
    )
    assert result.answered and result.fingerprint
    status, latency, queue, replicas, meta = result.evidence
    assert status.value == {"code": 200, "ok": True}
    assert isinstance(latency.value["ms"], float) and latency.value["ms"] >= 0
    assert queue.value == {"value": "down"}
    assert replicas.value == {"value": 3}
    assert meta.value == {"value": HEALTH["meta"]}
    assert all(e.provenance.url == http_server.url + "/health" for e in result.evidence)
    assert len(http_server.requests) == 1  # one request served every signal
    assert http_server.requests[0].method == "GET"


def test_a_503_is_a_value_not_a_failure(http_server):
    http_server.route("/health", Reply(503, {"status": "down"}))
    result = _probe(http_server.url + "/health", _req("status"), _req("json_value", path="status"))
    assert result.answered
    assert result.evidence[0].value == {"code": 503, "ok": False}
    assert result.evidence[1].value == {"value": "down"}


def test_a_redirect_is_observed_not_followed_and_is_not_ok(http_server):
    http_server.route("/old", Reply(302, "", {"Location": "/new"}))
    http_server.route("/new", Reply(200, HEALTH))
    result = _probe(http_server.url + "/old", _req("status"))
    assert result.evidence[0].value == {"code": 302, "ok": False}
    assert [r.path for r in http_server.requests] == ["/old"]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "http://login.example.invalid/sso", "/login"])
def test_a_302_to_a_file_another_host_or_a_login_page_is_not_up(http_server, location):
    http_server.route("/health", Reply(302, "", {"Location": location}))
    http_server.route("/login", Reply(200, "<form>sign in</form>", {"Content-Type": "text/html"}))
    result = _probe(http_server.url + "/health", _req("status"))
    assert result.answered
    assert result.evidence[0].value == {"code": 302, "ok": False}
    assert [r.path for r in http_server.requests] == ["/health"]


def test_follow_redirects_true_follows_the_same_host_only(http_server):
    http_server.route("/old", Reply(302, "", {"Location": "/new"}))
    http_server.route("/new", Reply(200, HEALTH))
    result = _probe(http_server.url + "/old", _req("status"), _req("json_value", path="status"), follow_redirects=True)
    assert [e.value for e in result.evidence] == [{"code": 200, "ok": True}, {"value": "up"}]
    assert [r.path for r in http_server.requests] == ["/old", "/new"]

    # Another host (127.0.0.2 is not 127.0.0.1) and another scheme are not followed.
    port = http_server.url.rsplit(":", 1)[1]
    for location in (f"http://localhost:{port}/new", "file:///etc/passwd"):
        http_server.requests.clear()
        http_server.route("/away", Reply(302, "", {"Location": location}))
        result = _probe(http_server.url + "/away", _req("status"), follow_redirects=True)
        assert result.evidence[0].value == {"code": 302, "ok": False}
        assert [r.path for r in http_server.requests] == ["/away"]


def test_follow_redirects_lists_the_other_hosts_allowed_and_drops_the_token(http_server, monkeypatch):
    monkeypatch.setenv("PW_PROBE_TOKEN", "s3cret-token")
    port = http_server.url.rsplit(":", 1)[1]
    http_server.route("/old", Reply(302, "", {"Location": f"http://localhost:{port}/new"}))
    http_server.route("/new", Reply(200, HEALTH))
    result = _probe(http_server.url + "/old", _req("status"), follow_redirects=["localhost"], token_env="PW_PROBE_TOKEN")
    assert result.evidence[0].value == {"code": 200, "ok": True}
    first, second = http_server.requests
    assert first.headers["authorization"] == "Bearer s3cret-token"
    assert second.path == "/new" and "authorization" not in second.headers


def test_a_redirect_loop_ends_with_the_last_redirect_observed(http_server):
    http_server.route("/loop", Reply(302, "", {"Location": "/loop"}))
    result = _probe(http_server.url + "/loop", _req("status"), follow_redirects=True)
    assert result.evidence[0].value == {"code": 302, "ok": False}
    assert 2 <= len(http_server.requests) <= 11


@pytest.mark.parametrize("value", ["yes please", ["bad host/"], 3])
def test_follow_redirects_takes_a_bool_or_host_names(value):
    with pytest.raises(ValidationError):
        HttpSource(id="api", url="http://127.0.0.1/", follow_redirects=value)


def test_a_body_trickled_a_byte_a_second_is_cut_at_the_deadline(http_server):
    # The server would take 200 s to send this; every read gets a byte well within the read timeout.
    http_server.route("/drip", Reply(200, "x" * 200, trickle=0.2))
    started = time.monotonic()
    result = _probe(http_server.url + "/drip", _req("status"), timeout_seconds=1)
    assert time.monotonic() - started < 3
    assert result.error is not None and result.error.kind == "timeout"
    assert result.evidence[0].error.kind == "timeout"


def test_a_hang_past_the_timeout_is_a_retryable_timeout(http_server):
    http_server.route("/slow", Reply(200, HEALTH, delay=2))
    started = time.monotonic()
    result = _probe(http_server.url + "/slow", _req("status"), _req("latency"), timeout_seconds=0.3)
    assert time.monotonic() - started < 1.5
    assert not result.answered
    assert result.error.kind == "timeout" and result.error.retryable
    assert all(e.error == result.error for e in result.evidence)


def test_a_refused_connection_is_unreachable():
    result = _probe(f"http://127.0.0.1:{_closed_port()}/health", _req("status"))
    assert result.error.kind == "unreachable" and result.error.retryable
    assert "\n" not in result.error.message


def test_an_oversize_body_is_malformed_for_json_but_status_still_answers(http_server):
    http_server.route("/big", Reply(200, {"padding": "x" * 5000, "ok": True}))
    result = _probe(http_server.url + "/big", _req("status"), _req("json_value", path="ok"), max_bytes=100)
    assert result.evidence[0].value == {"code": 200, "ok": True}
    error = result.evidence[1].error
    assert error.kind == "malformed" and "100 bytes" in error.message


def test_a_body_that_is_not_json_is_malformed(http_server):
    http_server.route("/page", Reply(200, "<html>hello</html>", {"Content-Type": "text/html"}))
    result = _probe(http_server.url + "/page", _req("status"), _req("json_value", path="status"))
    assert result.evidence[0].ok
    assert result.evidence[1].error.kind == "malformed"
    assert "not JSON" in result.evidence[1].error.message


@pytest.mark.parametrize("path", ["nope", "meta.nope", "checks.5.status", "checks.x", "status.deeper"])
def test_a_missing_path_is_not_found(http_server, path):
    http_server.route("/health", Reply(200, HEALTH))
    evidence = _probe(http_server.url + "/health", _req("json_value", path=path)).evidence[0]
    assert evidence.error.kind == "not_found"


def test_the_token_is_sent_and_never_leaks_into_evidence(http_server, monkeypatch):
    monkeypatch.setenv("PW_TEST_TOKEN", "s3cret-t0ken")
    http_server.route("/private", Reply(200, {"ok": True}))
    result = _probe(http_server.url + "/private", _req("status"), _req("json_value", path="missing"),
                    token_env="PW_TEST_TOKEN", headers={"X-Probe": "yes"})
    seen = http_server.requests[0].headers
    assert seen["authorization"] == "Bearer s3cret-t0ken"
    assert seen["x-probe"] == "yes"
    assert "s3cret" not in result.model_dump_json()


def test_a_missing_token_variable_is_auth_and_sends_nothing(http_server, monkeypatch):
    monkeypatch.delenv("PW_TEST_TOKEN", raising=False)
    http_server.route("/private", Reply(200, {"ok": True}))
    result = _probe(http_server.url + "/private", _req("status"), token_env="PW_TEST_TOKEN")
    assert result.error.kind == "auth" and "PW_TEST_TOKEN" in result.error.message
    assert http_server.requests == []


def test_userinfo_is_stripped_from_provenance_and_messages(http_server):
    port = _closed_port()
    refused = _probe(f"http://user:hunter2@127.0.0.1:{port}/x", _req("status"))
    assert "hunter2" not in refused.model_dump_json()
    http_server.route("/x", Reply(200, {}))
    url = http_server.url.replace("http://", "http://user:hunter2@") + "/x"
    result = _probe(url, _req("status"))
    assert result.evidence[0].provenance.url == http_server.url + "/x"
    assert "hunter2" not in result.model_dump_json()


def test_head_requests_answer_status(http_server):
    http_server.route("/health", Reply(204))
    result = _probe(http_server.url + "/health", _req("status"), method="HEAD")
    assert result.evidence[0].value == {"code": 204, "ok": True}
    assert http_server.requests[0].method == "HEAD"


def test_unknown_signals_and_bad_params_are_per_item_errors(http_server):
    http_server.route("/health", Reply(200, HEALTH))
    result = _probe(http_server.url + "/health", _req("status"), _req("nope"), _req("json_value"),
                    _req("json_value", path="a..b"))
    assert result.answered and result.evidence[0].ok
    assert result.evidence[1].error.kind == "unsupported"
    assert [e.error.kind for e in result.evidence[2:]] == ["malformed", "malformed"]


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "ftp://example.com/x"},
        {"url": "file:///etc/passwd"},
        {"url": "http:///nohost"},
        {"url": "https://example.com", "method": "POST"},
        {"url": "https://example.com", "surprise": 1},
        {"url": "https://example.com", "headers": {"X-Evil": "a\r\nInjected: 1"}},
    ],
)
def test_source_validation(settings):
    with pytest.raises(ValidationError):
        HttpSource(id="api", **settings)


def test_signal_models_carry_defaults():
    assert {name: (m.default_field, m.default_transform) for name, m in SIGNALS.items()} == {
        "status": ("ok", "bool"),
        "latency": ("ms", None),
        "json_value": ("value", "bool"),
    }
