"""The README's promises: its main command works from a fresh clone, and every
command and configuration key is documented."""

from __future__ import annotations

import re
import sqlite3
import subprocess

import pytest

from collectors.artifacts import GitHubArtifact, GitLabArtifact
from collectors.kinds import KINDS
from daemon.cli import app
from daemon.config.alerts import (
    AlertmanagerChannel,
    AlertRules,
    AppriseChannel,
    EmailChannel,
    LogChannel,
    Route,
    SlackChannel,
    WebhookChannel,
)
from daemon.config.model import (
    CheckFields,
    Config,
    Criterion,
    FreshWithinDays,
    Manual,
    Pillar,
    PillarFromTemplate,
    Project,
    Scale,
    Templates,
    Thresholds,
)
from daemon.config.retention import RetentionPolicy
from daemon.config.schedule import Schedule
from daemon.config.settings import ApiSettings, CelerySettings, DaemonSettings, Display
from tests.support.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
CONFIG_DOC = (REPO_ROOT / "docs" / "CONFIGURATION.md").read_text()


def fenced_command_after(marker: str) -> str:
    match = re.search(re.escape(marker) + r".*?```sh\n(.+?)\n```", README, re.S)
    assert match, f"no command after {marker!r} in README.md"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = fenced_command_after("**Run the test suite:**")
    assert command in (REPO_ROOT / ".ci" / "run").read_text()


def test_readme_main_command_from_a_fresh_clone(tmp_path):
    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(fresh)], check=True)
    command = fenced_command_after("**Run the main job**")
    proc = subprocess.run(["bash", "-c", command], cwd=fresh, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pillarwatch: overall" in proc.stdout
    db = sqlite3.connect(fresh / ".pillarwatch" / "pillarwatch.db")
    (count,) = db.execute("SELECT count(*) FROM snapshots WHERE project = 'pillarwatch'").fetchone()
    assert count == 1
    (overall,) = db.execute("SELECT overall FROM snapshots").fetchone()
    assert 0 < overall < 100
    # Every criterion of the embedded default is backed by evidence that was really read.
    statuses = {row[0] for row in db.execute("SELECT status FROM criterion_scores")}
    assert statuses == {"ok"}


@pytest.mark.parametrize("command", sorted(c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands))
def test_every_command_is_documented_in_the_readme(command):
    assert f"`pillarwatch {command}" in README


MODELS = [Config, Display, Templates, Project, Pillar, PillarFromTemplate, Criterion, Manual, CheckFields,
          Scale, Thresholds, FreshWithinDays, *(model for model, _ in KINDS.values()),
          GitHubArtifact, GitLabArtifact, AlertRules, Schedule, DaemonSettings, ApiSettings, CelerySettings, RetentionPolicy, WebhookChannel, AlertmanagerChannel, SlackChannel, EmailChannel, AppriseChannel, LogChannel, Route]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_configuration_key_is_documented(model):
    keys = [field.alias or name for name, field in model.model_fields.items() if not field.exclude]
    missing = [key for key in keys if f"`{key}`" not in CONFIG_DOC]
    assert not missing, f"{model.__name__}: undocumented keys {missing} in docs/CONFIGURATION.md"


def test_every_signal_is_documented():
    from daemon.config.model import SIGNAL_KINDS

    for signal in SIGNAL_KINDS:
        assert f"`{signal}`" in CONFIG_DOC and f"`{signal}`" in README, signal


def test_every_source_kind_is_documented():
    for kind in KINDS:
        assert f"`kind: {kind}`" in CONFIG_DOC, kind


def test_every_alert_message_field_is_documented():
    from daemon.alerting.rules import AlertMessage
    from daemon.changes import CriterionChange, EvidenceChange

    alerts_doc = (REPO_ROOT / "docs" / "ALERTS.md").read_text()
    for model in (AlertMessage, CriterionChange, EvidenceChange):
        missing = [name for name in model.model_fields if f"`{name}`" not in alerts_doc]
        assert not missing, f"{model.__name__}: undocumented fields {missing} in docs/ALERTS.md"
