"""Prometheus metrics: the store's state, read at scrape time.

``metrics_text(store, config)`` renders every family through a fresh
:class:`~prometheus_client.CollectorRegistry` holding one
:class:`StoreCollector`, so nothing is cached between scrapes and nothing is
formatted by hand. Only projects (and their sources) in the configuration are
exported: a project removed from the configuration disappears, even though its
rows stay in the store. docs/METRICS.md lists every series.

Conventions: units in names (``_seconds``, ``_percent``, ``_ratio``),
``_total`` for counters, times as Unix seconds, scores as stored (criterion
0-1, pillar and overall 0-100). A figure that does not exist (a pillar without
a scorable criterion, a criterion that is ``unknown``) has no sample rather
than a 0 or a NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import get_args

from prometheus_client import CollectorRegistry, exposition, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from daemon.alerting.rules import AlertKind, OutboxItem
from daemon.config.model import Config, Project
from daemon.scoring.snapshot import CriterionScore, Snapshot, Status
from daemon.store import Store
from daemon.store.runs import DURATION_BUCKETS

__all__ = ["CONTENT_TYPE", "DURATION_BUCKETS", "StoreCollector", "evidence_observed_at", "metrics_text"]

# The series use only classic metric and label names, which is text format 0.0.4:
# every Prometheus version reads it (newer clients call 1.0.0 "latest").
CONTENT_TYPE: str = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)


STATUSES: tuple[str, ...] = get_args(Status)
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
OPEN_ALERT_STATES: tuple[str, ...] = ("pending", "firing")
OUTBOX_STATES: tuple[str, ...] = get_args(OutboxItem.model_fields["state"].annotation)


def metrics_text(store: Store, config: Config, *, now: datetime | None = None) -> bytes:
    """The Prometheus text exposition of everything below, as of ``now``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, config, now=now or datetime.now(timezone.utc)))
    return generate_latest(registry)


def evidence_observed_at(snapshot: Snapshot, criterion: CriterionScore) -> datetime | None:
    """When the facts behind a criterion's score were last observed; None when no evidence backs it.

    - ``ok``: the newest of its evidence, or later when the same state was seen
      again (a repeat re-observed the same facts).
    - ``stale``: when it was last scored from fresh evidence (``scored_at``);
      the evidence it holds now is the failed attempt, which backs nothing.
    - ``unknown``, ``manual``, ``not_applicable``: no evidence backs a score.
    """
    if criterion.status == "stale":
        return criterion.scored_at
    if criterion.status != "ok":
        return None
    observed = [e.observed_at for e in criterion.evidence if e.error is None]
    if not observed:
        return None
    return max(observed + ([snapshot.last_seen_at] if snapshot.last_seen_at else []))


class StoreCollector(Collector):
    """Reads the store on every ``collect()``; one instance per scrape."""

    def __init__(self, store: Store, config: Config, *, now: datetime):
        self.store = store
        self.projects: dict[str, Project] = {p.id: p for p in config.projects}
        self.sources: set[tuple[str, str]] = {(p.id, s.id) for p in config.projects for s in p.sources}
        self.now = now

    def collect(self) -> Iterator[Metric]:
        latest = {pid: self.store.latest(pid) for pid in self.projects}
        yield from self._snapshots(latest)
        yield from self._sources()
        yield from self._alerts(latest)

    def _configured(self, project: str, source: str) -> bool:
        return (project, source) in self.sources

    # --- the latest snapshot of each project -------------------------------------

    def _snapshots(self, latest: dict[str, Snapshot | None]) -> Iterator[Metric]:
        project, pillar, criterion = ["project"], ["project", "pillar"], ["project", "pillar", "criterion"]
        overall = GaugeMetricFamily(
            "pillarwatch_overall_score_percent", "Overall completion of the project's latest snapshot, 0-100.", labels=project)
        pillar_score = GaugeMetricFamily(
            "pillarwatch_pillar_score_percent", "Completion of a pillar in the latest snapshot, 0-100 (no sample: no scorable criterion).",
            labels=pillar)
        coverage = GaugeMetricFamily(
            "pillarwatch_pillar_coverage_ratio", "Share of a pillar's criteria weight backed by fresh evidence, 0-1.", labels=pillar)
        score = GaugeMetricFamily(
            "pillarwatch_criterion_score_ratio", "Score of a criterion in the latest snapshot, 0-1 (no sample when unknown or not applicable).",
            labels=criterion)
        status = GaugeMetricFamily(
            "pillarwatch_criterion_status",
            f"Status of a criterion in the latest snapshot: 1 for the current status, 0 for the others ({', '.join(STATUSES)}).",
            labels=[*criterion, "status"])
        age = GaugeMetricFamily(
            "pillarwatch_evidence_age_seconds",
            "Seconds since the evidence behind a criterion's score was last observed (stale: since it was last scored fresh).",
            labels=criterion)
        seen = GaugeMetricFamily(
            "pillarwatch_snapshot_timestamp_seconds", "When the project's latest state was last observed, in Unix seconds.", labels=project)
        complete = GaugeMetricFamily(
            "pillarwatch_snapshot_complete", "1 when enough of the project's sources answered for the latest snapshot, 0 when it is partial.",
            labels=project)
        for pid, snap in latest.items():
            if snap is None:
                continue
            if snap.overall is not None:
                overall.add_metric([pid], snap.overall)
            seen.add_metric([pid], snap.seen_at.timestamp())
            complete.add_metric([pid], 1.0 if snap.complete else 0.0)
            for p in snap.pillars:
                if p.score is not None:
                    pillar_score.add_metric([pid, p.id], p.score)
                coverage.add_metric([pid, p.id], p.coverage)
                for c in p.criteria:
                    labels = [pid, p.id, c.id]
                    if c.score is not None:
                        score.add_metric(labels, c.score)
                    for s in STATUSES:
                        status.add_metric([*labels, s], 1.0 if c.status == s else 0.0)
                    observed = evidence_observed_at(snap, c)
                    if observed is not None:
                        age.add_metric(labels, max(0.0, (self.now - observed).total_seconds()))
        yield from (overall, pillar_score, coverage, score, status, age, seen, complete)

    # --- collector runs and source health ----------------------------------------

    def _sources(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "pillarwatch_source_runs", "Scheduled runs of a source that ended, by outcome (ok, error, missed, skipped, interrupted).",
            labels=["project", "source", "outcome"])
        for row in self.store.run_counts():
            if self._configured(row["project"], row["source"]):
                runs.add_metric([row["project"], row["source"], row["outcome"]], row["n"])
        durations = HistogramMetricFamily(
            "pillarwatch_source_run_duration_seconds", "How long the runs of a source that happened (ok or error) took.",
            labels=["project", "source"])
        for row in self.store.run_durations():
            if self._configured(row["project"], row["source"]):
                buckets = [(floatToGoString(b), n) for b, n in zip(DURATION_BUCKETS, row["buckets"])]
                durations.add_metric([row["project"], row["source"]], [*buckets, ("+Inf", row["count"])], row["sum"])
        last_success = GaugeMetricFamily(
            "pillarwatch_source_last_success_timestamp_seconds", "When the source last answered, in Unix seconds (no sample: never).",
            labels=["project", "source"])
        failing = GaugeMetricFamily(
            "pillarwatch_source_failing", "1 while the source's latest collection failed, else 0.", labels=["project", "source"])
        for row in self.store.source_health():
            if not self._configured(row["project"], row["source"]):
                continue
            labels = [row["project"], row["source"]]
            if row["last_success_at"] is not None:
                last_success.add_metric(labels, row["last_success_at"].timestamp())
            failing.add_metric(labels, 1.0 if row["failing_since"] is not None else 0.0)
        yield from (runs, durations, last_success, failing)

    # --- alerts and their delivery -----------------------------------------------

    def _alerts(self, latest: dict[str, Snapshot | None]) -> Iterator[Metric]:
        open_alerts = GaugeMetricFamily(
            "pillarwatch_alerts_open", "Alerts that are not resolved, by kind and state (pending or firing).",
            labels=["project", "kind", "state"])
        counts = {(r["project"], r["kind"], r["state"]): r["n"] for r in self.store.open_alert_counts()}
        # Every combination, 0 included, for each project that has a snapshot (alerts need one).
        keys = {(p, k, s) for p, snap in latest.items() if snap is not None for k in ALERT_KINDS for s in OPEN_ALERT_STATES}
        keys |= {key for key in counts if key[0] in self.projects}
        for key in sorted(keys):
            open_alerts.add_metric(list(key), counts.get(key, 0))
        backlog = GaugeMetricFamily(
            "pillarwatch_outbox_messages", "Alert messages in the delivery outbox, by state (pending, delivered, dead, disabled, superseded).",
            labels=["state"])
        by_state = self.store.outbox_backlog()
        for state in sorted(set(OUTBOX_STATES) | set(by_state)):
            backlog.add_metric([state], by_state.get(state, 0))
        oldest = self.store.oldest_pending_at()
        pending_age = GaugeMetricFamily(
            "pillarwatch_outbox_oldest_pending_age_seconds", "Seconds the oldest undelivered message has waited (0 when none waits).",
            value=max(0.0, (self.now - oldest).total_seconds()) if oldest else 0.0)
        yield from (open_alerts, backlog, pending_age)
