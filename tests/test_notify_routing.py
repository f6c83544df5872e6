"""Channel configuration and the routing table."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from daemon.alerting.notify import (
    AppriseChannel,
    Channel,
    EmailChannel,
    LogChannel,
    Route,
    SlackChannel,
    WebhookChannel,
    route,
)
from tests.support.alerts import message

ROUTES = [
    Route(channels=["pager"], severities=["critical"], events=["firing", "reminder"]),
    Route(channels=["shop-slack", "mail"], projects=["shop"]),
    Route(channels=["audit", "mail"]),
    Route(channels=["resolved-only"], events=["resolved"], projects=["shop", "billing"]),
]


@pytest.mark.parametrize(
    ("project", "severity", "event", "expected"),
    [
        ("shop", "critical", "firing", ["pager", "shop-slack", "mail", "audit"]),
        ("shop", "critical", "resolved", ["shop-slack", "mail", "audit", "resolved-only"]),
        ("shop", "warning", "reminder", ["shop-slack", "mail", "audit"]),
        ("billing", "critical", "reminder", ["pager", "audit", "mail"]),
        ("billing", "info", "resolved", ["audit", "mail", "resolved-only"]),
        ("search", "info", "firing", ["audit", "mail"]),
    ],
)
def test_route_table(project: str, severity: str, event: str, expected: list[str]) -> None:
    assert route(message(event, project=project, severity=severity), ROUTES) == expected


def test_no_matching_route_means_no_channel() -> None:
    assert route(message(), []) == []
    assert route(message(project="other"), [Route(channels=["x"], projects=["shop"])]) == []


CHANNELS = TypeAdapter(list[Channel])


def test_channels_parse_by_kind() -> None:
    parsed = CHANNELS.validate_python([
        {"kind": "webhook", "id": "hook", "url": "https://hooks.example.org/pw", "secret_env": "PW_HOOK_SECRET",
         "headers": {"X-Team": "core"}},
        {"kind": "slack", "id": "slack", "url_file": "/run/secrets/slack"},
        {"kind": "email", "id": "mail", "host": "smtp.example.org", "username_env": "U", "password_env": "P",
         "sender": "pw@example.org", "to": ["team@example.org"]},
        {"kind": "apprise", "id": "ntfy", "url_env": "PW_NTFY"},
        {"kind": "log", "id": "log"},
    ])
    assert [type(c) for c in parsed] == [WebhookChannel, SlackChannel, EmailChannel, AppriseChannel, LogChannel]
    hook, _, mail, _, log = parsed
    assert hook.timeout_seconds == 10 and mail.port == 587 and mail.starttls and log.level == "warning"


@pytest.mark.parametrize(
    ("channel", "problem"),
    [
        ({"kind": "pager", "id": "x"}, "does not match any of the expected tags"),
        ({"kind": "log", "id": "x", "colour": "red"}, "Extra inputs are not permitted"),
        ({"kind": "log", "id": "has space"}, "String should match pattern"),
        ({"kind": "webhook", "id": "h", "url": "ftp://x"}, "url must start with http:// or https://"),
        ({"kind": "webhook", "id": "h", "url": "https://x", "secret_env": "A", "secret_file": "/b"}, "not both"),
        ({"kind": "slack", "id": "s"}, "give exactly one of url_env, url_file, url"),
        ({"kind": "apprise", "id": "a", "url": "ntfy://t", "url_env": "A"}, "give exactly one of"),
        ({"kind": "email", "id": "m", "host": "h", "sender": "a@b", "to": []}, "at least 1 item"),
        ({"kind": "email", "id": "m", "host": "h", "sender": "a@b", "to": ["c@d"], "username_env": "U"},
         "give both username_env and password_env"),
        ({"kind": "log", "id": "x", "level": "loud"}, "Input should be"),
    ],
)
def test_invalid_channels_are_refused(channel: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        CHANNELS.validate_python([channel])


@pytest.mark.parametrize(
    ("route_", "problem"),
    [
        ({"channels": []}, "at least 1 item"),
        ({"channels": ["a"], "severities": ["urgent"]}, "Input should be"),
        ({"channels": ["a"], "events": ["pending"]}, "Input should be"),
        ({"channels": ["a"], "continue": True}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_routes_are_refused(route_: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Route.model_validate(route_)
