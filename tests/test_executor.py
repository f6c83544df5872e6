"""Executors without a broker: jobs as data, the worker's task, `celery:` settings, duplicate results.

The Celery runs themselves (a real Redis, real workers) are in test_celery.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.evidence import CollectResult, EvidenceRequest
from daemon.config.loading import load_config, load_worker_settings
from daemon.config.settings import CelerySettings
from daemon.errors import ConfigError
from daemon.run import executor as executor_module
from daemon.run.collect import run_collector
from daemon.run.dispatch import Collections
from daemon.run.executor import LocalExecutor, collect_all, make_executor
from daemon.run.jobs import Collected, CollectJob, SourceJob, build_job, requests_by_source, run_job, source_model
from daemon.run.pool import CollectionPool
from daemon.scoring.snapshot import rfc3339
from daemon.store import Store
from tests.support.git import GitRepo

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def _config(tmp_path: Path, repo: Path, **top: Any) -> Path:
    body = {
        "version": 1, "store": "pw.db", **top,
        "projects": [{
            "id": "svc",
            "sources": [
                {"id": "repo", "kind": "git", "path": str(repo), "queue": "git", "schedule": "5m"},
                {"id": "status", "kind": "doc", "git": "repo", "path": "docs/STATUS.md"},
                {"id": "answer", "kind": "command", "argv": ["echo", "42"]},
            ],
            "pillars": [{"id": "p", "title": "P", "criteria": [
                {"id": "readme", "title": "Readme", "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]},
                {"id": "head", "title": "Head", "checks": [{"source": "repo", "signal": "head", "transform": {"fresh_within_days": [7, 90]}}]},
                {"id": "restart", "title": "Survive restart", "checks": [{"source": "status", "signal": "declared_score"}]},
                {"id": "answer", "title": "Answer", "checks": [
                    {"source": "answer", "signal": "stdout_number", "regex": "([0-9]+)", "transform": {"scale": [0, 42]}}]},
            ]}],
        }],
    }
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# hi\n")
    repo.write("docs/STATUS.md", "# Status\n\nSurvive restart: 0.80\n")
    repo.commit("first")
    return repo


def _facts(result: CollectResult) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude={"observed_at"}) for e in result.evidence]


def test_a_job_crosses_json_and_runs_the_collectors_the_daemon_runs(tmp_path, repo):
    config = load_config(_config(tmp_path, repo.path, allow_commands=True))
    project = config.projects[0]
    wanted = requests_by_source(project)
    source = project.source("repo")
    job = build_job(config, project, source, wanted, due=NOW, now=NOW, upstream=None)
    assert job.queue == "git" and [d.id for d in job.dependents] == ["status"]
    assert "schedule" not in job.target.source and "queue" not in job.target.source
    # What a worker receives: JSON only.
    received = CollectJob.model_validate_json(job.model_dump_json())
    assert received == job and received.key() == job.key()
    got = run_job(received, cache_dir=tmp_path / "worker-cache", allow_commands=True)
    direct = run_collector(source, wanted["repo"], now=NOW, cache_dir=config.cache_path)
    assert got.result.fingerprint == direct.fingerprint == repo.git("rev-parse", "HEAD")
    assert _facts(got.result) == _facts(direct)
    (doc,) = project.dependents("repo")
    read_through = run_collector(doc, wanted["status"], now=NOW, cache_dir=config.cache_path, repo=project.upstream(doc), upstream=direct)
    assert _facts(got.dependents[0]) == _facts(read_through)
    assert got.dependents[0].evidence[0].value == {"score": 0.8}
    assert Collected.model_validate_json(got.model_dump_json()) == got
    # The local executor is the same call.
    assert _facts(LocalExecutor(config).collect(job).result) == _facts(direct)


def test_a_document_job_carries_its_git_source_and_upstream_result(tmp_path, repo):
    config = load_config(_config(tmp_path, repo.path))
    project = config.projects[0]
    wanted = requests_by_source(project)
    upstream = run_collector(project.source("repo"), wanted["repo"], now=NOW, cache_dir=config.cache_path)
    job = build_job(config, project, project.source("status"), wanted, due=NOW, now=NOW, upstream=upstream)
    assert job.repo is not None and job.repo["id"] == "repo" and job.upstream == upstream
    got = run_job(CollectJob.model_validate_json(job.model_dump_json()), cache_dir=tmp_path / "c", allow_commands=False)
    assert got.result.answered and got.result.fingerprint == upstream.fingerprint


def test_job_keys_name_one_due_time_of_one_collection(tmp_path, repo):
    config = load_config(_config(tmp_path, repo.path))
    project = config.projects[0]
    wanted = requests_by_source(project)
    first = build_job(config, project, project.source("repo"), wanted, due=NOW, now=NOW, upstream=None)
    later_now = build_job(config, project, project.source("repo"), wanted, due=NOW, now=datetime.now(timezone.utc), upstream=None)
    next_due = build_job(config, project, project.source("repo"), wanted, due=NOW.replace(hour=13), now=NOW, upstream=None)
    assert first.key() == later_now.key() != next_due.key()


def test_commands_run_on_a_worker_only_when_the_worker_and_the_configuration_allow_them(tmp_path, repo):
    config = load_config(_config(tmp_path, repo.path, allow_commands=True))
    project = config.projects[0]
    job = build_job(config, project, project.source("answer"), requests_by_source(project), due=NOW, now=NOW, upstream=None)
    assert run_job(job, cache_dir=tmp_path, allow_commands=True).result.evidence[0].value == {"value": 42.0}
    refused = run_job(job, cache_dir=tmp_path, allow_commands=False).result
    assert refused.error is not None and refused.error.kind == "unsupported"
    not_allowed = job.model_copy(update={"allow_commands": False})
    assert run_job(not_allowed, cache_dir=tmp_path, allow_commands=True).result.error is not None


def test_a_worker_checks_the_source_it_is_sent():
    assert source_model({"id": "g", "kind": "git", "path": "/srv/repo"}).path == "/srv/repo"
    with pytest.raises(ValueError):
        source_model({"id": "g", "kind": "git", "url": "ext::sh -c touch% /tmp/pwned"})
    with pytest.raises(ValueError):
        source_model({"id": "g", "kind": "nope"})
    with pytest.raises(ValueError):
        source_model({"id": "g", "kind": "git", "path": "/srv/repo", "schedule": "5m"})  # daemon keys never cross


def test_the_worker_task_retries_only_unreachable_sources_then_returns_the_fault_as_data(tmp_path, monkeypatch):
    from daemon.run import tasks

    calls: list[str] = []
    real = tasks.run_job

    def counted(job: CollectJob, **kwargs: Any) -> Collected:
        calls.append(job.target.id)
        return real(job, **kwargs)

    monkeypatch.setattr(tasks, "run_job", counted)
    app = tasks.celery_app(CelerySettings(max_retries=2, retry_delay="1s"))
    app.conf.task_always_eager = True
    task = app.tasks[tasks.TASK_NAME]

    def job(source: dict[str, Any]) -> dict[str, Any]:
        return CollectJob(project="svc", due=NOW, now=NOW, target=SourceJob(source=source, requests=[EvidenceRequest(signal="head")])).model_dump(mode="json")

    gone = task.apply(args=[job({"id": "gone", "kind": "git", "url": f"file://{tmp_path}/missing.git"})])
    assert gone.state == "SUCCESS"
    assert gone.result["result"]["error"]["kind"] == "unreachable"
    assert calls == ["gone"] * 3  # the first try and two retries
    calls.clear()
    missing = task.apply(args=[job({"id": "missing", "kind": "git", "path": str(tmp_path / "nowhere")})])
    assert missing.result["result"]["error"]["kind"] == "not_found" and calls == ["missing"]


def test_celery_settings(tmp_path, repo, monkeypatch):
    settings = CelerySettings()
    assert settings.broker() == settings.backend() == "redis://127.0.0.1:6379/0"
    assert CelerySettings(broker_url="amqp://guest@mq//").backend() == "rpc://"
    assert settings.time_limits(120) == (125.0, 130.0)
    assert settings.retry_countdowns() == [5, 10]
    assert settings.wait_seconds(120) == 3 * 130 + 15 + 3600 + 30
    assert CelerySettings(result_timeout="10m").wait_seconds(120) == 600
    monkeypatch.setenv("PW_TEST_BROKER", "redis://:s3cret@127.0.0.1:6380/2")
    assert CelerySettings(broker_url_env="PW_TEST_BROKER").broker().endswith("@127.0.0.1:6380/2")
    monkeypatch.delenv("PW_TEST_BROKER")
    with pytest.raises(ConfigError, match="PW_TEST_BROKER is not set"):
        CelerySettings(broker_url_env="PW_TEST_BROKER").broker()
    with pytest.raises(ValueError, match="not both"):
        CelerySettings(broker_url="redis://x", broker_url_env="X")
    config = load_config(_config(tmp_path, repo.path, executor="celery", celery={"broker_url_env": "PW_TEST_BROKER", "queues": ["git"]}))
    with pytest.raises(ConfigError, match="PW_TEST_BROKER"):
        make_executor(config)
    assert isinstance(make_executor(load_config(_config(tmp_path, repo.path))), LocalExecutor)


def test_the_password_of_a_broker_never_reaches_a_log_line(monkeypatch):
    from daemon.run.tasks import describe

    monkeypatch.setenv("PW_TEST_BROKER", "redis://:s3cret@127.0.0.1:6380/2")
    line = describe(CelerySettings(broker_url_env="PW_TEST_BROKER"))
    assert "s3cret" not in line and "127.0.0.1:6380" in line


def test_queues_and_time_limits_are_checked_with_the_configuration(tmp_path, repo):
    path = _config(tmp_path, repo.path, celery={"queues": ["api"]})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert "projects[0].sources[0].queue: no queue 'git' in celery.queues (have: pillarwatch, api)" in problem
    path = _config(tmp_path, repo.path, executor="celery", celery={"visibility_timeout": "2m"})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert "projects[0].sources[0].timeout_seconds" in problem and "visibility_timeout (120s)" in problem
    load_config(_config(tmp_path, repo.path, executor="celery", celery={"visibility_timeout": "10m"}))


def test_a_worker_reads_only_the_celery_settings(tmp_path):
    path = tmp_path / "worker.yaml"
    path.write_text(textwrap.dedent("""\
        celery:
          broker_url: redis://10.0.0.5:6379/0
          queues: [git]
        allow_commands: true
        projects: this is not read by a worker
        """))
    settings, partial = load_worker_settings(path)
    assert settings.broker() == "redis://10.0.0.5:6379/0" and settings.all_queues == ["pillarwatch", "git"]
    assert partial.allow_commands and partial.cache_path == tmp_path / ".pillarwatch" / "mirrors"
    path.write_text("celery:\n  visibility_timeout: soon\n")
    with pytest.raises(ConfigError) as info:
        load_worker_settings(path)
    assert "worker.yaml:2: celery.visibility_timeout: invalid duration" in info.value.problems[0]


def test_worker_with_an_unknown_queue_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "pw.yaml").write_text("celery: {queues: [git]}\n")
    out = subprocess.run([sys.executable, "-m", "daemon.cli", "worker", "--config", "pw.yaml", "--queues", "gti"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == "--queues: no queue 'gti' in celery.queues (have: pillarwatch, git)"


def _collections(tmp_path: Path, repo: Path, executor: Any = None) -> tuple[Collections, list[str]]:
    """The daemon's collections (daemon.run.dispatch) on the store of ``_config``, with no pool thread used; the projects it asked to score."""
    config = load_config(_config(tmp_path, repo))
    asked: list[str] = []
    collections = Collections(store=Store.open(config.store_path), db=threading.RLock(), config=lambda: config,
                              executor=executor or LocalExecutor(config), pool=CollectionPool(1), scored=asked.append,
                              stopping=threading.Event())
    return collections, asked


def _due(collections: Collections, source: str) -> datetime:
    project = collections.config().project("svc")
    return project.schedule_of(project.source(source)).latest_due(datetime.now(timezone.utc))


def test_a_result_for_a_due_time_already_recorded_is_dropped(tmp_path, repo):
    first = CollectResult(source="repo", fingerprint="first")

    class DeliveredTwice:
        """While this delivery ran, another delivery of the same task was recorded."""

        def collect(self, job: CollectJob) -> Collected:
            with collections.db:
                collections.store.record_run("svc", "repo", job.due, outcome="ok", now=NOW, result=first)
            return Collected(result=CollectResult(source="repo", fingerprint="second"))

        def close(self) -> None:
            pass

    collections, asked = _collections(tmp_path, repo.path, DeliveredTwice())
    store = collections.store
    try:
        collections._collect("svc", "repo", _due(collections, "repo"))
        assert store.latest_results("svc")["repo"].fingerprint == "first"
        assert [(r["source"], r["outcome"], r["fingerprint"]) for r in store.runs("svc")] == [("repo", "ok", "first")]
        assert asked == []  # nothing new to score
    finally:
        store.close()
        collections.pool.close()


def test_a_document_read_through_git_is_collected_in_its_git_sources_job(tmp_path, repo):
    """Not a job of its own (one task per git source): the git source's run reads it at the commit it saw,
    and records its row under the same due time."""
    collections, asked = _collections(tmp_path, repo.path)
    store = collections.store
    try:
        due = _due(collections, "repo")
        collections._collect("svc", "repo", due)
        status = store.latest_results("svc")["status"]
        assert status.answered and status.evidence[0].value["score"] == 0.8
        assert sorted((r["source"], r["outcome"], r["due_at"]) for r in store.runs("svc")) == [
            ("repo", "ok", rfc3339(due)), ("status", "ok", rfc3339(due))]
        assert asked == ["svc"]
    finally:
        store.close()
        collections.pool.close()


class _Slow:
    """An executor that runs every job here, but hangs on one and crashes on another: what collect_all must survive."""

    def __init__(self, config: Any, hang: str, crash: str):
        self.local, self.hang, self.crash = LocalExecutor(config), hang, crash

    def collect(self, job: CollectJob) -> Collected:
        if job.target.id == self.crash:
            raise RuntimeError("boom")
        if job.target.id == self.hang:
            time.sleep(3)
        return self.local.collect(job)

    def close(self) -> None:
        pass


def test_collect_all_answers_in_order_and_abandons_an_overrun(tmp_path, repo, monkeypatch):
    monkeypatch.setattr(executor_module, "_GRACE_SECONDS", 0.0)
    config = load_config(_config(tmp_path, repo.path, allow_commands=True))
    project = config.projects[0]
    wanted = requests_by_source(project)
    sources = [project.source("repo"), project.source("answer")]
    jobs = [build_job(config, project, s, wanted, due=NOW, now=NOW, upstream=None) for s in sources] * 20
    jobs = [job.model_copy(update={"target": job.target.model_copy(update={"source": {**job.target.source,
                                                                                      "id": f"{job.target.id}{n}"}})})
            for n, job in enumerate(jobs)]
    jobs[7].target.source["timeout_seconds"] = 0.5
    results = collect_all(_Slow(config, hang=jobs[7].target.id, crash=jobs[3].target.id), jobs, concurrency=4)
    assert [r.result.source for r in results] == [job.target.id for job in jobs]
    assert results[3].result.error.kind == "malformed" and "collector crashed: RuntimeError: boom" in results[3].result.error.message
    assert results[7].result.error.kind == "timeout" and "did not answer within 0.5s" in results[7].result.error.message
    assert all(r.result.answered for n, r in enumerate(results) if n not in (3, 7))
