"""The delivery chain: each stage alone with a fake clock, then deliver_due against a real store and receiver."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from daemon.alerting.notify import DeliveryReport, LogChannel, SendResult, WebhookChannel, deliver_due, notify
from daemon.alerting.notify.sender import Attempt, Run, backoff, check_dead, check_disabled, due, record, retry, send
from daemon.alerting.rules import OutboxItem
from daemon.store import Store
from tests.support.alerts import T0, Clock, message, outbox_item
from tests.support.http_server import HttpServer, Reply, Seen
from tests.support.webhooks import verify_standard_webhook

SECRET = "whsec_c2VjcmV0LWtleS1mb3ItdGhlLXRlc3Qtb25seQ=="


class _Ceiling(random.Random):
    """Always draws the top of the range, to see the backoff's ceiling."""

    def random(self) -> float:
        return 1.0


def _run(store: Store | None = None, *, now: datetime = T0, channels: dict | None = None, **extra) -> Run:
    return Run(store, channels or {}, now, extra.pop("rng", random.Random(7)), **extra)  # type: ignore[arg-type]


def _item(**extra) -> OutboxItem:
    return outbox_item("hook", "pw_k", **extra).model_copy(update={"id": 1})


# --- each stage alone ------------------------------------------------------------------


@pytest.mark.parametrize(("next_in", "skipped"), [(-60, False), (0, False), (1, True), (3600, True)])
def test_due(next_in: int, skipped: bool) -> None:
    item = _item().model_copy(update={"next_attempt_at": T0 + timedelta(seconds=next_in)})
    assert due(Attempt(item), _run()).skipped is skipped


@pytest.mark.parametrize(
    ("age", "dead_after", "outcome"),
    [
        (timedelta(0), timedelta(days=3), None),
        (timedelta(days=3) - timedelta(seconds=1), timedelta(days=3), None),
        (timedelta(days=3), timedelta(days=3), "dead"),
        (timedelta(hours=2), timedelta(hours=1), "dead"),
    ],
)
def test_check_dead(age: timedelta, dead_after: timedelta, outcome: str | None) -> None:
    item = _item(created_at=T0 - age).model_copy(update={"last_error": "http://127.0.0.1: HTTP 503"})
    after = check_dead(Attempt(item), _run(dead_after=dead_after))
    assert after.outcome == outcome
    if outcome:
        assert after.error == f"undelivered after {dead_after}; last error: http://127.0.0.1: HTTP 503"


@pytest.mark.parametrize(("disabled", "outcome"), [({}, None), ({"other": "410"}, None), ({"hook": "HTTP 410"}, "disabled")])
def test_check_disabled(disabled: dict[str, str], outcome: str | None) -> None:
    after = check_disabled(Attempt(_item()), _run(disabled=disabled))
    assert after.outcome == outcome
    assert after.error == ("channel hook is disabled: HTTP 410" if outcome else None)


def test_send_to_an_unconfigured_channel_is_retryable() -> None:
    after = send(Attempt(_item()), _run(channels={}))
    assert after.result == SendResult(ok=False, retryable=True, error="channel hook is not configured")


def test_a_decided_attempt_passes_every_stage_untouched() -> None:
    decided = Attempt(_item(), outcome="dead", error="too old")
    for stage in (due, check_dead, check_disabled, send, retry):
        assert stage(decided, _run(disabled={"hook": "gone"})) is decided


@pytest.mark.parametrize(
    ("result", "attempts", "outcome", "min_delay", "max_delay"),
    [
        (SendResult(ok=True, retryable=False, status_code=200), 0, "delivered", None, None),
        (SendResult(ok=False, retryable=False, error="HTTP 400", status_code=400), 0, "dead", None, None),
        (SendResult(ok=False, retryable=False, error="HTTP 410", status_code=410, disable=True), 0, "disabled", None, None),
        (SendResult(ok=False, retryable=True, error="HTTP 503", status_code=503), 0, "retry", 0, 5),
        (SendResult(ok=False, retryable=True, error="HTTP 503", status_code=503), 3, "retry", 0, 40),
        (SendResult(ok=False, retryable=True, error="HTTP 503", status_code=503), 40, "retry", 0, 1800),
        (SendResult(ok=False, retryable=True, error="HTTP 429", status_code=429, retry_after=900), 0, "retry", 900, 900),
        (SendResult(ok=False, retryable=True, error="HTTP 429", status_code=429, retry_after=1), 4, "retry", 1, 80),
    ],
)
def test_retry_turns_a_result_into_an_outcome(result: SendResult, attempts: int, outcome: str,
                                              min_delay: float | None, max_delay: float | None) -> None:
    for seed in range(20):
        item = _item().model_copy(update={"attempts": attempts})
        after = retry(Attempt(item, result=result), _run(rng=random.Random(seed)))
        assert after.outcome == outcome and after.error == result.error
        if min_delay is None:
            assert after.next_attempt_at is None
        else:
            assert after.next_attempt_at is not None
            assert min_delay <= (after.next_attempt_at - T0).total_seconds() <= max_delay


@pytest.mark.parametrize(("attempts", "ceiling"), [(0, 5), (1, 10), (2, 20), (5, 160), (8, 1280), (9, 1800), (10_000, 1800)])
def test_backoff_ceiling_grows_to_the_cap(attempts: int, ceiling: float) -> None:
    assert backoff(attempts, _Ceiling()) == ceiling
    draws = [backoff(attempts, random.Random(seed)) for seed in range(200)]
    assert all(0 <= d <= ceiling for d in draws)
    assert max(draws) - min(draws) > ceiling / 2  # jittered over the whole range, not a fixed step


def test_record_writes_the_attempt_and_a_410_disables_the_channel(store: Store) -> None:
    store.enqueue([outbox_item("hook", "pw_a")])
    [item] = store.due_outbox(T0)
    gone = SendResult(ok=False, retryable=False, error="http://127.0.0.1: HTTP 410", status_code=410, disable=True)
    run = _run(store)
    record(Attempt(item, result=gone, outcome="disabled", error=gone.error), run)
    assert store.disabled_channels() == {"hook": "http://127.0.0.1: HTTP 410"} and run.disabled == store.disabled_channels()
    assert [(a["outcome"], a["status_code"]) for a in store.attempts(item.id)] == [("disabled", 410)]
    assert store.outbox_items(state="disabled")[0].last_error == "http://127.0.0.1: HTTP 410"
    # A skipped attempt writes nothing.
    record(Attempt(item, skipped=True), run)
    assert len(store.attempts(item.id)) == 1


def test_a_channel_that_raises_gives_a_retryable_result() -> None:
    broken = LogChannel.model_construct(kind="log", id="broken", level="bogus")  # skips validation on purpose
    result = notify(broken, message(), idempotency_key="pw_x", now=T0)
    assert (result.ok, result.retryable, result.error) == (False, True, "internal error in the log channel: TypeError")


# --- deliver_due against a real store and receiver ---------------------------------------


def _hook(server_url: str, path: str = "/hook") -> dict[str, WebhookChannel]:
    return {"hook": WebhookChannel(id="hook", url=server_url + path, secret_env="PW_SENDER_SECRET")}


def _drain(store: Store, channels: dict, clock: Clock, rng: random.Random, *, rounds: int = 1000) -> list[DeliveryReport]:
    """Deliver, then jump the clock to the next due item, until nothing is pending."""
    reports = []
    for _ in range(rounds):
        reports.append(deliver_due(store, channels, now=clock.now, rng=rng))
        pending = store.outbox_items(state="pending")
        if not pending:
            return reports
        clock.to(min(i.next_attempt_at for i in pending))
    raise AssertionError("the outbox never drained")


def test_receiver_down_then_back_gets_each_message_once(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    answered: list[tuple[str, int]] = []

    def receiver(seen: Seen) -> Reply:
        assert verify_standard_webhook(SECRET, seen.headers, seen.body)
        status = 503 if len(answered) < 3 else 200
        answered.append((seen.headers["webhook-id"], status))
        return Reply(status)

    http_server.route("/hook", receiver)
    # Two projects: two groups, so two messages (one project's would share one message).
    store.enqueue([outbox_item("hook", "pw_one"), outbox_item("hook", "pw_two", event="resolved", project="web")])
    clock = Clock()
    reports = _drain(store, _hook(http_server.url), clock, random.Random(3))

    delivered = Counter(key for key, status in answered if 200 <= status < 300)
    assert delivered == {"pw_one": 1, "pw_two": 1}
    assert sum(r.delivered for r in reports) == 2 and sum(r.retry for r in reports) == 3
    assert sum(r.dead + r.disabled for r in reports) == 0
    for item in store.outbox_items():
        attempts = store.attempts(item.id)
        assert item.state == "delivered" and item.attempts == len(attempts)
        assert [a["outcome"] for a in attempts][-1] == "delivered"
        assert all(a["outcome"] == "retry" and a["status_code"] == 503 for a in attempts[:-1])
        # Each wait stayed under that attempt's backoff ceiling (5 s, 10 s, 20 s).
        times = [datetime.fromisoformat(a["at"].replace("Z", "+00:00")) for a in attempts]
        for n, (before, after) in enumerate(itertools.pairwise(times)):
            assert timedelta(0) <= after - before <= timedelta(seconds=5 * 2**n)


def test_retry_after_is_honoured(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    replies = iter([Reply(503, headers={"Retry-After": "600"}), Reply(200)])
    http_server.route("/hook", lambda seen: next(replies))
    store.enqueue([outbox_item("hook", "pw_ra")])
    channels = _hook(http_server.url)

    assert deliver_due(store, channels, now=T0, rng=random.Random(1)) == DeliveryReport(retry=1)
    [item] = store.outbox_items()
    assert item.next_attempt_at == T0 + timedelta(seconds=600)
    assert deliver_due(store, channels, now=T0 + timedelta(seconds=599)) == DeliveryReport()
    assert len(http_server.requests) == 1
    assert deliver_due(store, channels, now=T0 + timedelta(seconds=600)) == DeliveryReport(delivered=1)
    assert len(http_server.requests) == 2


def test_410_disables_the_channel_for_later_items(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    http_server.route("/hook", Reply(410, "gone"))
    store.enqueue([outbox_item("hook", "pw_first"), outbox_item("hook", "pw_second"),
                   outbox_item("log", "pw_log")])
    channels = {**_hook(http_server.url), "log": LogChannel(id="log")}

    report = deliver_due(store, channels, now=T0)
    assert report == DeliveryReport(delivered=1, disabled=2)
    assert len(http_server.requests) == 1  # the second item was not sent
    assert store.disabled_channels() == {"hook": f"{http_server.url}/hook: HTTP 410: gone"}

    store.enqueue([outbox_item("hook", "pw_later", created_at=T0 + timedelta(hours=1))])
    assert deliver_due(store, channels, now=T0 + timedelta(hours=1)) == DeliveryReport(disabled=1)
    assert len(http_server.requests) == 1
    states = {i.idempotency_key: i.state for i in store.outbox_items()}
    assert states == {"pw_first": "disabled", "pw_second": "disabled", "pw_later": "disabled", "pw_log": "delivered"}
    later = next(i for i in store.outbox_items() if i.idempotency_key == "pw_later")
    assert [(a["outcome"], a["status_code"]) for a in store.attempts(later.id)] == [("disabled", None)]


def test_an_item_older_than_dead_after_goes_dead_without_a_request(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    http_server.route("/hook", Reply(200))
    store.enqueue([outbox_item("hook", "pw_old")])
    now = T0 + timedelta(days=3, seconds=1)
    assert deliver_due(store, _hook(http_server.url), now=now) == DeliveryReport(dead=1)
    assert http_server.requests == []
    [item] = store.outbox_items()
    assert item.state == "dead" and item.last_error == "undelivered after 3 days, 0:00:00"


def test_a_receiver_that_never_recovers_is_given_up_after_dead_after(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    http_server.route("/hook", Reply(503))
    store.enqueue([outbox_item("hook", "pw_never")])
    clock = Clock()
    reports = _drain(store, _hook(http_server.url), clock, random.Random(5))
    [item] = store.outbox_items()
    attempts = store.attempts(item.id)
    assert item.state == "dead" and attempts[-1]["outcome"] == "dead"
    assert item.last_error.endswith(f"last error: {http_server.url}/hook: HTTP 503")
    assert clock.now - T0 >= timedelta(days=3)
    assert len(http_server.requests) == len(attempts) - 1 == sum(r.retry for r in reports)
    # Once capped, waits stay within 30 minutes.
    times = [datetime.fromisoformat(a["at"].replace("Z", "+00:00")) for a in attempts]
    assert max(b - a for a, b in itertools.pairwise(times)) <= timedelta(minutes=30)


def test_a_permanent_rejection_goes_dead_at_once(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    http_server.route("/hook", Reply(400, "bad"))
    store.enqueue([outbox_item("hook", "pw_bad")])
    assert deliver_due(store, _hook(http_server.url), now=T0) == DeliveryReport(dead=1)
    [item] = store.outbox_items()
    assert item.state == "dead" and item.last_error == f"{http_server.url}/hook: HTTP 400: bad"
    assert store.attempts(item.id)[0]["status_code"] == 400


def test_an_unconfigured_channel_waits_for_the_configuration(store: Store, http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_SENDER_SECRET", SECRET)
    http_server.route("/hook", Reply(200))
    store.enqueue([outbox_item("hook", "pw_wait")])
    assert deliver_due(store, {}, now=T0, rng=random.Random(2)) == DeliveryReport(retry=1)
    [item] = store.outbox_items()
    assert item.state == "pending" and item.last_error == "channel hook is not configured"
    # The channel is configured again: the next due run delivers it.
    assert deliver_due(store, _hook(http_server.url), now=item.next_attempt_at) == DeliveryReport(delivered=1)
    assert len(http_server.requests) == 1


def test_items_not_yet_due_are_left_alone(store: Store) -> None:
    store.enqueue([outbox_item("log", "pw_future", created_at=T0 + timedelta(minutes=5))])
    assert deliver_due(store, {"log": LogChannel(id="log")}, now=T0) == DeliveryReport()
    assert store.attempts(store.outbox_items()[0].id) == []


def test_a_hanging_receiver_does_not_hold_up_another_channel(store: Store, http_server) -> None:
    timeout = 3.0
    hanging = HttpServer()
    try:
        hanging.route("/hook", Reply(200, delay=60))  # accepts, then never answers within the timeout
        arrived: dict[str, float] = {}

        def healthy(seen: Seen) -> Reply:
            arrived["healthy"] = time.monotonic()
            return Reply(200)

        http_server.route("/hook", healthy)
        channels = {"slow": WebhookChannel(id="slow", url=f"{hanging.url}/hook", timeout_seconds=timeout),
                    "fast": WebhookChannel(id="fast", url=f"{http_server.url}/hook", timeout_seconds=timeout)}
        # The hanging channel's item is first in the outbox: a serial sender would reach the other after its timeout.
        store.enqueue([outbox_item("slow", "pw_slow"), outbox_item("fast", "pw_fast")])
        started = time.monotonic()
        report = deliver_due(store, channels, now=T0, rng=random.Random(4))
        ended = time.monotonic()
    finally:
        hanging.close()
    assert report == DeliveryReport(delivered=1, retry=1)
    assert arrived["healthy"] - started < timeout / 2  # it did not wait for the other channel's timeout
    assert ended - started >= timeout  # the hanging one did run into its timeout
    states = {i.channel: (i.state, i.last_error) for i in store.outbox_items()}
    assert states["fast"] == ("delivered", None)
    assert states["slow"][0] == "pending" and "no answer within 3 s" in states["slow"][1]


def test_a_round_gives_up_waiting_at_its_deadline_and_keeps_the_item_pending(store: Store) -> None:
    from daemon.alerting.notify.sender import SendControl

    hanging = HttpServer()
    try:
        hanging.route("/hook", Reply(200, delay=60))
        channels = {"slow": WebhookChannel(id="slow", url=f"{hanging.url}/hook", timeout_seconds=30)}
        store.enqueue([outbox_item("slow", "pw_slow")])
        control = SendControl()
        control.deadline = time.monotonic() + 1.0
        started = time.monotonic()
        assert deliver_due(store, channels, now=T0, control=control) == DeliveryReport()
        assert time.monotonic() - started < 5
        [item] = store.outbox_items()
        assert item.state == "pending" and store.attempts(item.id) == [] and item.id in control.in_flight
        # A second round (the shutdown flush) does not send it again while it is in flight.
        assert deliver_due(store, channels, now=T0, control=control) == DeliveryReport()
        assert len(hanging.requests) == 1
    finally:
        hanging.close()


def test_a_resolution_supersedes_its_alerts_pending_reminders_on_its_channel(store: Store) -> None:
    """A reminder still retrying when its alert resolves is never sent after the resolution
    (an Alertmanager re-post would make the alert fire again there)."""
    def item(event: str, key: str, *, alert_id: int = 1, channel: str = "am") -> OutboxItem:
        return OutboxItem(alert_id=alert_id, channel=channel, idempotency_key=key, message=message(event),
                          created_at=T0, next_attempt_at=T0)

    store.enqueue([item("reminder", "pw_r1"), item("reminder", "pw_other_alert", alert_id=2),
                   item("reminder", "pw_other_channel", channel="hook"), item("firing", "pw_firing")])
    store.enqueue([item("resolved", "pw_resolved")])
    states = {i.idempotency_key: i.state for i in store.outbox_items()}
    assert states == {"pw_r1": "superseded", "pw_other_alert": "pending", "pw_other_channel": "pending",
                      "pw_firing": "pending", "pw_resolved": "pending"}
    assert "pw_r1" not in {i.idempotency_key for i in store.due_outbox(T0 + timedelta(hours=1))}
