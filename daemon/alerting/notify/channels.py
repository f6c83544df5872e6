"""Routing: which channels an alert message goes to, by the configuration's ``routes:``."""

from __future__ import annotations

from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import Route


def _matches(route: Route, message: AlertMessage) -> bool:
    return (
        (route.projects is None or message.project in route.projects)
        and (route.severities is None or message.severity in route.severities)
        and (route.events is None or message.event in route.events)
    )


def route(message: AlertMessage, routes: list[Route]) -> list[str]:
    """The distinct channel ids of every matching route, in route order."""
    chosen: dict[str, None] = {}
    for candidate in routes:
        if _matches(candidate, message):
            chosen.update(dict.fromkeys(candidate.channels))
    return list(chosen)
