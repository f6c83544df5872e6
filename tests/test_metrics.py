"""Prometheus /metrics: the store's state, rendered by prometheus-client and read back by its own parser.

Two real databases: the history of tests/support/history.py as built
(``history``), and the same history followed by a day on which
tests/test_restart.py is deleted (a real regression alert), billing's
repository disappears (a stale criterion, a failing source), and the
shop state is seen again six hours later (a cheap repeat); plus scheduled
runs of known durations and delivered and dead outbox messages (``eventful``).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.run.runner import run_projects
from daemon.store import Store
from daemon.web.metrics import CONTENT_TYPE, DURATION_BUCKETS, StoreCollector, metrics_text
from tests.support.history import DAY0, History, build_history
from tests.support.paths import REPO_ROOT

DAY4 = DAY0 + timedelta(days=4)  # the last collection of the history
DAY5 = DAY0 + timedelta(days=5)
SCRAPE = DAY4 + timedelta(hours=1, seconds=30)
LATER = DAY5 + timedelta(hours=7)  # the eventful scrape
T = DAY5 + timedelta(hours=1)  # runs start here

# (source, due offset in minutes, seconds it took or None while running, outcome)
RUNS = [
    ("repo", 0, 0.05, "ok"),
    ("repo", 15, 1.0, "ok"),  # exactly on a bucket bound: counted in le="1.0"
    ("repo", 30, 7.0, "error"),
    ("repo", 45, 400.0, "ok"),  # beyond the last bound: only in +Inf
    ("repo", 60, None, "missed"),
    ("repo", 75, None, "skipped"),
    ("repo", 90, None, "running"),  # never finished: not counted
    ("status", 0, 2.5, "ok"),
    ("retired", 0, 1.0, "ok"),  # a source no longer in the configuration
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: bytes) -> tuple[dict[str, object], Samples]:
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families.values() for s in f.samples}
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def scrape(history: History, *, now: datetime, config=None) -> tuple[dict[str, object], Samples]:
    with Store.open(history.db, readonly=True) as store:  # as the HTTP API opens it
        return parse(metrics_text(store, config or history.config, now=now))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    return build_history(tmp_path_factory.mktemp("metrics-history"))


@pytest.fixture(scope="module")
def eventful(tmp_path_factory) -> History:
    tmp = tmp_path_factory.mktemp("metrics-eventful")
    h = build_history(tmp)
    config = h.config
    broken = config.model_copy(deep=True)
    billing = broken.project("billing")
    billing.sources[0] = billing.sources[0].model_copy(update={"path": str(tmp / "gone")})
    h.repo.remove("tests/test_restart.py")
    h.repo.commit("day 5", when=DAY5 - timedelta(hours=1))
    with Store.open(h.db) as store:
        run_projects(config, [config.project("shop")], store=store, now=DAY5)  # durability 96.7 -> 63.3: fires
        run_projects(broken, [broken.project("billing")], store=store, now=DAY5)  # billing's repository is gone
        run_projects(config, [config.project("shop")], store=store, now=DAY5 + timedelta(hours=6))  # a repeat
        for source, minutes, seconds, outcome in RUNS:
            due, started = T + timedelta(minutes=minutes), T + timedelta(minutes=minutes, seconds=1)
            if outcome in ("missed", "skipped"):
                store.record_run("shop", source, due, outcome=outcome, now=started)
                continue
            assert store.claim_run("shop", source, due, now=started)
            if seconds is not None:
                store.record_run("shop", source, due, outcome=outcome, now=started + timedelta(seconds=seconds))
        assert store.claim_run("billing", "repo", T, now=T)
        store.record_run("billing", "repo", T, outcome="error", now=T + timedelta(seconds=0.3), error="gone")
        assert store.claim_run("removed-project", "repo", T, now=T)
        store.record_run("removed-project", "repo", T, outcome="ok", now=T + timedelta(seconds=2))
        first, second = store.due_outbox(LATER, limit=2)
        store.record_attempt(first.id, at=LATER - timedelta(hours=1), outcome="delivered")
        store.record_attempt(second.id, at=LATER - timedelta(hours=1), outcome="dead", error="HTTP 400")
    return h


# --- the latest snapshot -----------------------------------------------------------------


def test_scores_of_the_latest_snapshots(history):
    _, samples = scrape(history, now=SCRAPE)
    assert value(samples, "pillarwatch_overall_score_percent", project="shop") == pytest.approx(59 / 0.6)  # 98.333...
    assert value(samples, "pillarwatch_pillar_score_percent", project="shop", pillar="durability") == pytest.approx(290 / 3)
    assert value(samples, "pillarwatch_pillar_score_percent", project="shop", pillar="dx") == pytest.approx(100.0)
    assert value(samples, "pillarwatch_overall_score_percent", project="billing") == pytest.approx(100.0)
    assert value(samples, "pillarwatch_pillar_coverage_ratio", project="shop", pillar="durability") == 1.0
    assert series(samples, "pillarwatch_criterion_score_ratio") == pytest.approx({
        frozenset({"project": "shop", "pillar": "durability", "criterion": "restart"}.items()): 1.0,
        frozenset({"project": "shop", "pillar": "durability", "criterion": "retry"}.items()): 1.0,
        frozenset({"project": "shop", "pillar": "durability", "criterion": "replay"}.items()): 0.9,
        frozenset({"project": "shop", "pillar": "dx", "criterion": "readme"}.items()): 1.0,
        frozenset({"project": "shop", "pillar": "dx", "criterion": "ci"}.items()): 1.0,
        frozenset({"project": "billing", "pillar": "ledger", "criterion": "ledger-tests"}.items()): 1.0,
    })
    for project in ("shop", "billing"):
        assert value(samples, "pillarwatch_snapshot_timestamp_seconds", project=project) == DAY4.timestamp()
        assert value(samples, "pillarwatch_snapshot_complete", project=project) == 1.0


def test_criterion_status_is_one_for_the_current_status_and_zero_for_the_others(history):
    _, samples = scrape(history, now=SCRAPE)
    statuses = series(samples, "pillarwatch_criterion_status")
    assert len(statuses) == 6 * 5  # six criteria, five statuses each
    ones = {dict(labels)["criterion"]: dict(labels)["status"] for labels, v in statuses.items() if v == 1.0}
    assert ones == {"restart": "ok", "retry": "ok", "replay": "ok", "readme": "ok", "ci": "ok", "ledger-tests": "ok"}
    assert sorted(set(statuses.values())) == [0.0, 1.0]
    assert value(samples, "pillarwatch_criterion_status", project="shop", pillar="dx", criterion="ci", status="stale") == 0.0


def test_evidence_age_is_now_minus_when_it_was_observed(history):
    with Store.open(history.db, readonly=True) as store:
        shop = store.latest("shop")
    _, samples = scrape(history, now=SCRAPE)
    ages = series(samples, "pillarwatch_evidence_age_seconds")
    assert len(ages) == 6
    replay = shop.criterion("durability", "replay")
    assert replay.evidence[0].observed_at == DAY4
    expected = (SCRAPE - max(e.observed_at for e in replay.evidence)).total_seconds()
    assert value(samples, "pillarwatch_evidence_age_seconds", project="shop", pillar="durability", criterion="replay") == expected == 3630.0


def test_sources_last_success_and_failing(history):
    _, samples = scrape(history, now=SCRAPE)
    for project, source in [("shop", "repo"), ("shop", "status"), ("billing", "repo")]:
        assert value(samples, "pillarwatch_source_last_success_timestamp_seconds", project=project, source=source) == DAY4.timestamp()
        assert value(samples, "pillarwatch_source_failing", project=project, source=source) == 0.0


def test_no_open_alert_after_the_history_and_its_messages_wait_in_the_outbox(history):
    _, samples = scrape(history, now=SCRAPE)
    open_alerts = series(samples, "pillarwatch_alerts_open")
    assert len(open_alerts) == 2 * 3 * 2  # projects x kinds x (pending, firing), zeros included
    assert set(open_alerts.values()) == {0.0}
    with Store.open(history.db, readonly=True) as store:
        pending = len(store.outbox_items(state="pending"))
    assert pending == 8  # four alerts of the history: fired and resolved, nothing delivers in tests
    assert series(samples, "pillarwatch_outbox_messages") == {
        frozenset({("state", "pending")}): 8.0, frozenset({("state", "delivered")}): 0.0,
        frozenset({("state", "dead")}): 0.0, frozenset({("state", "disabled")}): 0.0,
        frozenset({("state", "superseded")}): 0.0,
    }
    # The first message was queued at the first collection.
    assert value(samples, "pillarwatch_outbox_oldest_pending_age_seconds") == (SCRAPE - DAY0).total_seconds()


# --- after a regression, a vanished repository and scheduled runs ---------------------------


def test_a_real_regression_is_an_open_firing_alert(eventful):
    _, samples = scrape(eventful, now=LATER)
    assert value(samples, "pillarwatch_pillar_score_percent", project="shop", pillar="durability") == pytest.approx(190 / 3)
    assert value(samples, "pillarwatch_overall_score_percent", project="shop") == pytest.approx(245 / 3)
    assert value(samples, "pillarwatch_criterion_score_ratio", project="shop", pillar="durability", criterion="restart") == 0.0
    assert value(samples, "pillarwatch_alerts_open", project="shop", kind="regression", state="firing") == 2.0  # overall and durability
    others = {labels: v for labels, v in series(samples, "pillarwatch_alerts_open").items()
              if labels != frozenset({"project": "shop", "kind": "regression", "state": "firing"}.items())}
    assert set(others.values()) == {0.0}


def test_a_repeat_moves_the_snapshot_time_and_refreshes_the_evidence(eventful):
    _, samples = scrape(eventful, now=LATER)
    seen_again = DAY5 + timedelta(hours=6)
    assert value(samples, "pillarwatch_snapshot_timestamp_seconds", project="shop") == seen_again.timestamp()
    # The repeat observed the same facts again: their age runs from then, not from the first observation.
    age = value(samples, "pillarwatch_evidence_age_seconds", project="shop", pillar="dx", criterion="readme")
    assert age == (LATER - seen_again).total_seconds() == 3600.0


def test_a_stale_criterion_ages_from_its_last_fresh_score(eventful):
    _, samples = scrape(eventful, now=LATER)
    labels = {"project": "billing", "pillar": "ledger", "criterion": "ledger-tests"}
    assert value(samples, "pillarwatch_criterion_status", **labels, status="stale") == 1.0
    assert value(samples, "pillarwatch_criterion_status", **labels, status="ok") == 0.0
    assert value(samples, "pillarwatch_criterion_score_ratio", **labels) == 1.0  # carried, not zero
    # Its evidence now is the failed attempt of DAY5; the score is from DAY4.
    assert value(samples, "pillarwatch_evidence_age_seconds", **labels) == (LATER - DAY4).total_seconds()
    assert value(samples, "pillarwatch_pillar_coverage_ratio", project="billing", pillar="ledger") == 0.0
    assert value(samples, "pillarwatch_snapshot_complete", project="billing") == 0.0
    assert value(samples, "pillarwatch_source_failing", project="billing", source="repo") == 1.0
    assert value(samples, "pillarwatch_source_last_success_timestamp_seconds", project="billing", source="repo") == DAY4.timestamp()
    assert value(samples, "pillarwatch_source_failing", project="shop", source="repo") == 0.0


def test_runs_are_counted_by_outcome(eventful):
    families, samples = scrape(eventful, now=LATER)
    assert families["pillarwatch_source_runs"].type == "counter"
    runs = {tuple(dict(labels)[k] for k in ("project", "source", "outcome")): v
            for labels, v in series(samples, "pillarwatch_source_runs_total").items()}
    assert runs == {
        ("shop", "repo", "ok"): 3.0, ("shop", "repo", "error"): 1.0,
        ("shop", "repo", "missed"): 1.0, ("shop", "repo", "skipped"): 1.0,
        ("shop", "status", "ok"): 1.0, ("billing", "repo", "error"): 1.0,
    }  # no running run, no retired source, no removed project


def test_run_durations_histogram_is_cumulative_and_consistent(eventful):
    families, samples = scrape(eventful, now=LATER)
    assert families["pillarwatch_source_run_duration_seconds"].type == "histogram"
    name = "pillarwatch_source_run_duration_seconds"
    labels = {"project": "shop", "source": "repo"}
    buckets = {dict(k)["le"]: v for k, v in series(samples, name + "_bucket").items() if dict(k)["source"] == "repo"
               and dict(k)["project"] == "shop"}
    took = [0.05, 1.0, 7.0, 400.0]
    expected = {str(b): float(sum(t <= b for t in took)) for b in DURATION_BUCKETS} | {"+Inf": 4.0}
    assert buckets == expected
    assert buckets["1.0"] == 2.0 and buckets["300.0"] == 3.0
    counts = [buckets[str(b)] for b in DURATION_BUCKETS] + [buckets["+Inf"]]
    assert counts == sorted(counts)
    assert value(samples, name + "_count", **labels) == buckets["+Inf"] == 4.0
    assert value(samples, name + "_sum", **labels) == pytest.approx(sum(took))
    assert value(samples, name + "_count", project="shop", source="status") == 1.0
    assert value(samples, name + "_sum", project="shop", source="status") == pytest.approx(2.5)
    assert value(samples, name + "_bucket", project="billing", source="repo", le="0.5") == 1.0
    assert value(samples, name + "_bucket", project="billing", source="repo", le="0.25") == 0.0
    sources = {(dict(k)["project"], dict(k)["source"]) for k in series(samples, name + "_count")}
    assert sources == {("shop", "repo"), ("shop", "status"), ("billing", "repo")}


def test_outbox_backlog_by_state_and_oldest_pending(eventful):
    _, samples = scrape(eventful, now=LATER)
    backlog = {dict(k)["state"]: v for k, v in series(samples, "pillarwatch_outbox_messages").items()}
    # Eight messages of the history, two more for the regression; one delivered, one given up.
    assert backlog == {"pending": 8.0, "delivered": 1.0, "dead": 1.0, "disabled": 0.0, "superseded": 0.0}
    with Store.open(eventful.db, readonly=True) as store:
        oldest = min(i.created_at for i in store.outbox_items(state="pending"))
    assert oldest == DAY0 + timedelta(days=3)  # the first two (days 0 and 1) left the backlog
    assert value(samples, "pillarwatch_outbox_oldest_pending_age_seconds") == (LATER - oldest).total_seconds()


# --- what is not exported, and the text itself ----------------------------------------------


def test_a_project_missing_from_the_configuration_is_not_exported(eventful):
    shop_only = eventful.config.model_copy(update={"projects": [eventful.config.project("shop")]})
    _, samples = scrape(eventful, now=LATER, config=shop_only)
    projects = {dict(labels).get("project") for _, labels in samples}
    assert projects == {"shop", None}  # None: the outbox series have no project
    assert value(samples, "pillarwatch_overall_score_percent", project="shop") == pytest.approx(245 / 3)


def test_an_empty_database_is_valid_text_without_project_series(history, tmp_path):
    with Store.open(tmp_path / "empty.db") as store:
        text = metrics_text(store, history.config, now=SCRAPE)
    families, samples = parse(text)
    assert all(f.documentation for f in families.values())
    assert not any(dict(labels).get("project") for _, labels in samples)
    assert value(samples, "pillarwatch_outbox_oldest_pending_age_seconds") == 0.0
    assert set(series(samples, "pillarwatch_outbox_messages").values()) == {0.0}
    assert "pillarwatch_overall_score_percent" in families  # every family is declared, even without samples


def test_every_family_has_help_and_the_text_is_prometheus_text(history):
    with Store.open(history.db, readonly=True) as store:
        text = metrics_text(store, history.config)  # `now` defaults to the current time
    assert isinstance(text, bytes)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    families, samples = parse(text)
    assert len(families) == 15
    for family in families.values():
        assert family.name.startswith("pillarwatch_")
        assert family.documentation, family.name
        assert re.search(rf"^# HELP {family.name}\S* \S", text.decode(), re.MULTILINE)
    assert all(math.isfinite(v) for v in samples.values())


def exposed_names(store: Store, config) -> set[str]:
    collector = StoreCollector(store, config, now=SCRAPE)
    return {f.name + ("_total" if f.type == "counter" else "") for f in collector.collect()}


def test_every_series_is_documented(history):
    doc = (REPO_ROOT / "docs" / "METRICS.md").read_text()
    with Store.open(history.db, readonly=True) as store:
        names = exposed_names(store, history.config)
    documented = set(re.findall(r"^\| `(pillarwatch_\w+)`", doc, re.MULTILINE))
    assert names == documented
    for name in names:
        assert re.search(rf"`{name}`", doc), name


def test_metrics_md_is_linked_from_the_readme():
    assert "docs/METRICS.md" in (REPO_ROOT / "README.md").read_text()


# --- checked by Prometheus's own tool (installed by .ci/run) --------------------------------

promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (.ci/run installs it)")


def yaml_block(after: str) -> str:
    doc = (REPO_ROOT / "docs" / "METRICS.md").read_text()
    match = re.search(re.escape(after) + r".*?```yaml\n(.+?)```", doc, re.DOTALL)
    assert match, f"no yaml block after {after!r} in docs/METRICS.md"
    return match.group(1)


def run_promtool(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["promtool", *args], input=stdin, cwd=cwd, capture_output=True, timeout=60, check=False)


@promtool
def test_promtool_lints_the_exposition(eventful):
    with Store.open(eventful.db, readonly=True) as store:
        text = metrics_text(store, eventful.config, now=LATER)
    proc = run_promtool("check", "metrics", stdin=text)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr


@promtool
def test_promtool_accepts_the_documented_scrape_config_and_rules(tmp_path):
    (tmp_path / "prometheus.yml").write_text(yaml_block("## Scrape configuration"))
    (tmp_path / "rules.yml").write_text(yaml_block("## Alerting rules"))
    for args in (("check", "config", "--syntax-only", "prometheus.yml"), ("check", "rules", "rules.yml")):
        proc = run_promtool(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@promtool
def test_the_documented_rules_fire_on_pillarwatch_series(tmp_path):
    (tmp_path / "rules.yml").write_text(yaml_block("## Alerting rules"))
    (tmp_path / "test.yml").write_text(textwrap.dedent("""\
        rule_files: [rules.yml]
        evaluation_interval: 1m
        tests:
          - interval: 1m
            input_series:
              - series: 'pillarwatch_pillar_score_percent{project="shop", pillar="durability"}'
                values: '63.3+0x10 50+0x90'
              - series: 'pillarwatch_snapshot_complete{project="shop"}'
                values: '1+0x100'
              - series: 'pillarwatch_source_failing{project="billing", source="repo"}'
                values: '0+0x10 1+0x40'
              - series: 'pillarwatch_outbox_oldest_pending_age_seconds'
                values: '0+0x10 60+60x70'
            alert_rule_test:
              - eval_time: 50m
                alertname: PillarBelowFloor
                exp_alerts: []
              - eval_time: 75m
                alertname: PillarBelowFloor
                exp_alerts:
                  - exp_labels: {severity: warning, project: shop, pillar: durability}
                    exp_annotations: {summary: "shop/durability is at 50 %"}
              - eval_time: 35m
                alertname: PillarwatchSourceFailing
                exp_alerts: []
              - eval_time: 45m
                alertname: PillarwatchSourceFailing
                exp_alerts:
                  - exp_labels: {severity: warning, project: billing, source: repo}
                    exp_annotations: {summary: "pillarwatch source billing/repo is failing"}
              - eval_time: 70m
                alertname: PillarwatchOutboxStuck
                exp_alerts: []  # 3600 s: not more than an hour yet
              - eval_time: 71m
                alertname: PillarwatchOutboxStuck
                exp_alerts:
                  - exp_labels: {severity: critical}
                    exp_annotations: {summary: "pillarwatch alert messages have waited 1h 1m 0s"}
        """))
    proc = run_promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
