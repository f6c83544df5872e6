"""The Slack channel against a real incoming-webhook stand-in on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from daemon.alerting.notify import SlackChannel, slack
from tests.support.alerts import T0, message
from tests.support.http_server import Reply

HOOK_PATH = "/services/T0001/B0002/XXXXsecretXXXX"


def test_blocks_reach_the_webhook(http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SLACK_URL", http_server.url + HOOK_PATH)
    http_server.route(HOOK_PATH, Reply(200, "ok", headers={"Content-Type": "text/plain"}))
    result = slack.send(SlackChannel(id="team", url_env="PW_SLACK_URL"), message(), idempotency_key="pw_s1", now=T0)
    assert result.ok and result.status_code == 200

    [seen] = http_server.requests
    assert seen.method == "POST" and seen.headers["content-type"].startswith("application/json")
    body = json.loads(seen.body)
    assert body["text"] == ":red_circle: Durability fell from 91% to 74%"
    header, section, context, links = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Durability fell from 91% to 74%", "emoji": True}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"] == message().summary
    assert context == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": "*Project* shop"},
        {"type": "mrkdwn", "text": "*Pillar* durability"},
        {"type": "mrkdwn", "text": "*Severity* warning"},
        {"type": "mrkdwn", "text": "*Snapshot* 42"},
    ]}
    assert links["text"]["text"] == "<https://ci.example.org/runs/4812>"


def test_text_is_escaped_and_cut_to_block_kit_limits() -> None:
    long_title = "T" * 200
    body = slack.payload(message("resolved", title=long_title, summary="a < b & c > d", subject="overall", links=[]))
    header, section, context = body["blocks"]
    assert body["text"].startswith(":large_green_circle: ")
    assert len(header["text"]["text"]) == 150 and header["text"]["text"].endswith("…")
    assert section["text"]["text"] == "a &lt; b &amp; c &gt; d"
    assert context["elements"][1]["text"] == "*Overall*"


@pytest.mark.parametrize(
    ("reply", "retryable", "disable"),
    [(Reply(404, "no_service"), False, False), (Reply(410, "channel_is_archived"), False, True),
     (Reply(429, headers={"Retry-After": "3"}), True, False), (Reply(500), True, False)],
)
def test_slack_errors_hide_the_webhook_path(http_server, reply: Reply, retryable: bool, disable: bool) -> None:
    http_server.route(HOOK_PATH, reply)
    result = slack.send(SlackChannel(id="team", url=http_server.url + HOOK_PATH), message(), idempotency_key="pw_s2", now=T0)
    assert (result.ok, result.retryable, result.disable) == (False, retryable, disable)
    assert result.error.startswith(f"{http_server.url}/***: HTTP {reply.status}") and "secret" not in result.error


def test_an_unset_url_variable_is_a_retryable_fault(monkeypatch) -> None:
    monkeypatch.delenv("PW_SLACK_URL", raising=False)
    result = slack.send(SlackChannel(id="team", url_env="PW_SLACK_URL"), message(), idempotency_key="pw_s3", now=T0)
    assert (result.ok, result.retryable, result.error) == (
        False, True, "slack team: Slack webhook URL: environment variable PW_SLACK_URL is not set")


def test_exactly_one_url_source_is_required() -> None:
    with pytest.raises(ValidationError, match="give exactly one of url_env, url_file, url"):
        SlackChannel(id="team")
    with pytest.raises(ValidationError, match="got url_env, url"):
        SlackChannel(id="team", url_env="X", url="https://hooks.slack.com/services/a")
