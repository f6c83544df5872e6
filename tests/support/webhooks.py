"""Standard Webhooks, checked independently of the sender's code, and receivers that use the check.

The verifier is written from the Standard Webhooks specification with the
standard library only, so the webhook tests do not check the sender's signing
code against itself; ``tests/test_notify_support.py`` tests it against the
specification's own example.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.support.http_server import HttpServer, Reply, Seen

SECRET = "whsec_" + base64.b64encode(b"a test secret of thirty-two bytes!").decode()


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, from the specification: HMAC-SHA256 of "id.timestamp.body"."""
    msg_id, timestamp, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected):
            return True
    return False


class Receiver:
    """A webhook receiver on ``/hook`` of ``server`` that accepts only messages signed with ``secret``."""

    def __init__(self, server: HttpServer, *, secret: str = SECRET):
        self.secret = secret
        self.accepted: list[dict[str, Any]] = []
        self.rejected = 0
        self.down = 0  # answer 503 to this many requests first
        server.route("/hook", self)

    def __call__(self, seen: Seen) -> Reply:
        if self.down > 0:
            self.down -= 1
            return Reply(503, "down")
        if not verify_standard_webhook(self.secret, seen.headers, seen.body):
            self.rejected += 1
            return Reply(401, "bad signature")
        self.accepted.append({"id": seen.headers["webhook-id"], **json.loads(seen.body)})
        return Reply(204, "")

    def events(self) -> list[str]:
        """The event of every alert of every body taken (a body lists a group's alerts)."""
        return [alert["pillarwatch"]["event"] for body in self.accepted for alert in body["alerts"]]


@dataclass(frozen=True)
class Receipt:
    key: str  # the idempotency key (webhook-id)
    epoch: int  # which sender process the test was running when it arrived
    at: float  # time.monotonic()
    event: str  # firing, resolved, reminder


class KeyedReceiver(Receiver):
    """A Receiver slowed down and keeping every receipt with the sender process it came from.

    A message counts as taken when it arrives with a good signature, before
    the answer goes back: a sender killed while it waits for the answer has
    handed the message over, and sending it again is the at-least-once
    re-send a Standard Webhooks receiver drops by its ``webhook-id``.
    """

    def __init__(self, server: HttpServer, *, delay: float = 0.0):
        super().__init__(server)
        self.delay = delay
        self.epoch = 0
        self.receipts: list[Receipt] = []
        self.cut = 0  # requests whose sender died mid-body
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        if len(seen.body) < int(seen.headers.get("content-length") or 0):
            # The sender was killed while it wrote the body: nothing was handed over (and its
            # signature cannot match the part that came); not a bad signature.
            with self._lock:
                self.cut += 1
            return Reply(400, "incomplete body")
        with self._lock:
            reply = super().__call__(seen)
            if reply.status == 204:
                body = self.accepted[-1]
                self.receipts.append(Receipt(body["id"], self.epoch, time.monotonic(), body["pillarwatch"]["event"]))
        reply.delay = self.delay
        return reply

    def counts(self) -> Counter[str]:
        """How many times each idempotency key arrived."""
        with self._lock:
            return Counter(r.key for r in self.receipts)

    def in_epoch(self, epoch: int) -> list[Receipt]:
        with self._lock:
            return [r for r in self.receipts if r.epoch == epoch]
