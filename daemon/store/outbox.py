"""Alert state and the durable delivery outbox.

Alerts and outbox items are written in the same transaction as the snapshot
that caused them (see :meth:`Store.transaction`); the sender then delivers
each item at least once, recording every attempt.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from daemon.alerting.rules import Alert, OutboxItem
from daemon.scoring.snapshot import rfc3339
from daemon.store._util import parse_time


class AlertQueries:
    db: sqlite_utils.Database

    # --- alerts ----------------------------------------------------------------------

    def open_alerts(self, project: str) -> list[Alert]:
        """The project's alerts that are pending or firing."""
        return [
            self._alert(row)
            for row in self.db.query("SELECT * FROM alerts WHERE project = ? AND state != 'resolved' ORDER BY id", [project])
        ]

    def alerts(self, *, project: str | None = None, state: str | None = None, limit: int = 100) -> list[Alert]:
        """Alerts, newest first."""
        sql, params = "SELECT * FROM alerts WHERE 1 = 1", []  # type: ignore[var-annotated]
        if project:
            sql += " AND project = ?"
            params.append(project)
        if state:
            sql += " AND state = ?"
            params.append(state)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [self._alert(row) for row in self.db.query(sql, params)]

    def save_alerts(self, alerts: list[Alert]) -> list[Alert]:
        """Insert new alerts and update known ones; returns them with their ids."""
        saved = []
        with self.db.atomic():
            for alert in alerts:
                body = alert.model_dump_json(exclude={"id"})
                values = [alert.project, alert.subject, alert.kind, alert.state, body, rfc3339(alert.started_at),
                          rfc3339(alert.resolved_at) if alert.resolved_at else None]
                if alert.id is None:
                    cursor = self.db.execute(
                        "INSERT INTO alerts (project, subject, kind, state, body, started_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        values,
                    )
                    alert = alert.model_copy(update={"id": cursor.lastrowid})
                else:
                    self.db.execute(
                        "UPDATE alerts SET project = ?, subject = ?, kind = ?, state = ?, body = ?, started_at = ?, resolved_at = ? WHERE id = ?",
                        [*values, alert.id],
                    )
                saved.append(alert)
        return saved

    def _alert(self, row: dict[str, Any]) -> Alert:
        return Alert.model_validate_json(row["body"]).model_copy(update={"id": row["id"]})

    def open_alert_counts(self) -> list[dict[str, Any]]:
        """Alerts that are not resolved, counted (``n``) by project, kind and state."""
        return list(self.db.query(
            "SELECT project, kind, state, count(*) AS n FROM alerts WHERE state != 'resolved'"
            " GROUP BY project, kind, state ORDER BY project, kind, state"
        ))

    # --- outbox ----------------------------------------------------------------------

    def enqueue(self, items: list[OutboxItem]) -> None:
        """Add messages to deliver; an idempotency key already queued is not queued twice.

        A resolution supersedes the reminders of its alert still pending on its channel: a
        reminder (an Alertmanager re-post) sent after the resolution would make the alert
        fire again there.
        """
        with self.db.atomic():
            for item in items:
                if item.message.event == "resolved":
                    self.db.execute(
                        "UPDATE outbox SET state = 'superseded' WHERE alert_id = ? AND channel = ? AND state = 'pending'"
                        " AND json_extract(message, '$.event') = 'reminder'",
                        [item.alert_id, item.channel],
                    )
                self.db.execute(
                    "INSERT OR IGNORE INTO outbox (alert_id, channel, idempotency_key, message, created_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [item.alert_id, item.channel, item.idempotency_key, item.message.model_dump_json(),
                     rfc3339(item.created_at), rfc3339(item.next_attempt_at)],
                )

    def due_outbox(self, now: datetime, *, limit: int = 50) -> list[OutboxItem]:
        """Pending items whose next attempt is due, oldest first."""
        rows = self.db.query(
            "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            [rfc3339(now), limit],
        )
        return [self._item(row) for row in rows]

    def last_firing_items(self, channel: str) -> list[OutboxItem]:
        """For each firing alert that has gone to ``channel``, the latest outbox item for it there."""
        rows = self.db.query(
            "SELECT o.* FROM outbox o JOIN alerts a ON a.id = o.alert_id WHERE a.state = 'firing' AND o.channel = ?"
            " AND o.id = (SELECT max(id) FROM outbox WHERE alert_id = o.alert_id AND channel = o.channel) ORDER BY o.id",
            [channel],
        )
        return [self._item(row) for row in rows]

    def outbox_items(self, *, alert_id: int | None = None, state: str | None = None, limit: int = 200) -> list[OutboxItem]:
        sql, params = "SELECT * FROM outbox WHERE 1 = 1", []  # type: ignore[var-annotated]
        if alert_id is not None:
            sql += " AND alert_id = ?"
            params.append(alert_id)
        if state:
            sql += " AND state = ?"
            params.append(state)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [self._item(row) for row in self.db.query(sql, params)]

    def outbox_backlog(self, project: str | None = None) -> dict[str, int]:
        """How many items are in each state (of ``project``'s alerts only, when given)."""
        if project is None:
            rows = self.db.query("SELECT state, count(*) AS n FROM outbox GROUP BY state")
        else:
            rows = self.db.query(
                "SELECT o.state, count(*) AS n FROM outbox o JOIN alerts a ON a.id = o.alert_id"
                " WHERE a.project = ? GROUP BY o.state", [project])
        return {row["state"]: row["n"] for row in rows}

    def oldest_pending_at(self) -> datetime | None:
        """When the oldest message still waiting for delivery was queued."""
        # By julianday: "...:00.5Z" sorts before "...:00Z" as text.
        row = self.db.execute(
            "SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY julianday(created_at) LIMIT 1"
        ).fetchone()
        return parse_time(row[0]) if row and row[0] else None

    def record_attempt(
        self,
        item_id: int,
        *,
        at: datetime,
        outcome: str,
        status_code: int | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Record one delivery attempt and move the item on.

        ``outcome``: ``delivered``; ``retry`` (due again at ``next_attempt_at``);
        ``dead`` (given up); ``disabled`` (its channel is switched off).
        """
        state = {"delivered": "delivered", "retry": "pending", "dead": "dead", "disabled": "disabled"}[outcome]
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO delivery_attempts (outbox_id, at, outcome, status_code, error) VALUES (?, ?, ?, ?, ?)",
                [item_id, rfc3339(at), outcome, status_code, error],
            )
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, state = ?, last_error = ?,"
                " next_attempt_at = coalesce(?, next_attempt_at), delivered_at = ? WHERE id = ?",
                [state, error, rfc3339(next_attempt_at) if next_attempt_at else None,
                 rfc3339(at) if outcome == "delivered" else None, item_id],
            )

    def attempts(self, item_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM delivery_attempts WHERE outbox_id = ? ORDER BY rowid", [item_id]))

    def disable_channel(self, channel: str, *, reason: str, at: datetime, config_hash: str | None = None) -> None:
        """Switch a channel off; ``config_hash`` identifies the configuration that was refused."""
        with self.db.atomic():
            self.db.execute(
                "INSERT OR REPLACE INTO channel_state (channel, disabled_at, reason, config_hash) VALUES (?, ?, ?, ?)",
                [channel, rfc3339(at), reason, config_hash],
            )

    def enable_channel(self, channel: str) -> bool:
        """Switch a channel back on; False when it was not disabled."""
        with self.db.atomic():
            return self.db.execute("DELETE FROM channel_state WHERE channel = ?", [channel]).rowcount > 0

    def disabled_channels(self) -> dict[str, str]:
        """Channel id -> why it was switched off (an HTTP 410, say)."""
        return {row["channel"]: row["reason"] for row in self.db.query("SELECT channel, reason FROM channel_state")}

    def disabled_channel_states(self) -> list[dict[str, Any]]:
        """Each disabled channel: ``channel``, ``disabled_at``, ``reason`` and ``config_hash``."""
        return list(self.db.query("SELECT channel, disabled_at, reason, config_hash FROM channel_state ORDER BY channel"))

    def _item(self, row: dict[str, Any]) -> OutboxItem:
        return OutboxItem.model_validate(
            {
                **row,
                "message": json.loads(row["message"]),
                "delivered_at": parse_time(row["delivered_at"]) if row["delivered_at"] else None,
            }
        )
