"""deploy/: checked by the real tools, and run for real where it can run here.

- the systemd unit: ``systemd-analyze verify`` and ``security --offline`` (Debian ``systemd``);
- the Kubernetes manifests: schema validation with the schemas ``kubernetes-validate`` ships (offline);
- the Prometheus rules: ``promtool check rules`` and ``promtool test rules`` (Debian ``prometheus``);
- the Grafana dashboard and the rules: every metric they name is one pillarwatch exports;
- the Dockerfile and compose file: their shape (the image is not built here);
- the deployed configuration: the real daemon runs it, the image's probe script answers.

A test skips only when its tool is missing; ``.ci/run`` installs them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.git import GitSource
from daemon.config.loading import load_config
from daemon.config.settings import CelerySettings, DaemonSettings
from tests.support.git import GitRepo
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

DEPLOY = REPO_ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "pillarwatch.service"
WORKER_UNIT = DEPLOY / "systemd" / "pillarwatch-worker.service"
UNITS = [UNIT, WORKER_UNIT]
DROPINS = DEPLOY / "systemd" / "pillarwatch.service.d"
K8S = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "pillarwatch-rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "pillarwatch-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "pillarwatch.json"
DOCKERFILE = DEPLOY / "container" / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
DEPLOY_CONFIG = DEPLOY / "config" / "pillarwatch.yaml"
HEALTHCHECK = DEPLOY / "container" / "healthcheck.py"
METRICS_MODULE = REPO_ROOT / "daemon" / "web" / "metrics.py"

STORE_DIR = "/var/lib/pillarwatch"
CONFIG_FILE = "/etc/pillarwatch/pillarwatch.yaml"
SHUTDOWN_GRACE = DaemonSettings().shutdown_grace.total_seconds()

# The families of docs/METRICS.md, used only while daemon/web/metrics.py does not exist.
FALLBACK_FAMILIES = {
    "pillarwatch_overall_score_percent": "gauge", "pillarwatch_pillar_score_percent": "gauge",
    "pillarwatch_criterion_status": "gauge", "pillarwatch_source_failing": "gauge",
    "pillarwatch_source_last_success_timestamp_seconds": "gauge", "pillarwatch_source_runs": "counter",
    "pillarwatch_source_run_duration_seconds": "histogram", "pillarwatch_alerts_open": "gauge",
    "pillarwatch_outbox_messages": "gauge", "pillarwatch_outbox_oldest_pending_age_seconds": "gauge",
    "pillarwatch_snapshot_timestamp_seconds": "gauge",
}
SUFFIXES = {"gauge": ("",), "counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
PROMETHEUS_OWN = {"up"}  # series Prometheus itself writes for every scrape


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package {package}; .ci/run installs it)")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


# --- systemd ---------------------------------------------------------------------------


def unit_settings(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of a repeated key kept in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def seconds(value: str) -> float:
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert match and match.group(2) in units | {"": 1}, value
    return float(match.group(1)) * units.get(match.group(2), 1)


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """A root for ``systemd-analyze --root``: the unit and its drop-ins installed as in
    deploy/README.md, the commands it names present and executable, and the host's own
    units (sysinit.target, network-online.target, ...) that it depends on."""
    root = tmp_path / "root"
    system = root / "etc" / "systemd" / "system"
    system.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, system / unit.name)
    shutil.copytree(DROPINS, system / DROPINS.name)
    host_units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()), None)
    if host_units is None:
        pytest.skip("no systemd unit directory on this machine (Debian package systemd)")
    shutil.copytree(host_units, root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    settings = {k: v for unit in UNITS for k, v in unit_settings(unit.read_text()).items()}
    for command in settings["ExecStart"] + settings["ExecReload"]:
        executable = root / shlex.split(command)[0].lstrip("/")
        executable.parent.mkdir(parents=True, exist_ok=True)
        executable.write_text("#!/bin/sh\nexit 0\n")
        executable.chmod(0o755)
    return root


def verify(root: Path, unit: Path = UNIT) -> subprocess.CompletedProcess[str]:
    tool = need("systemd-analyze", "systemd")
    return run(tool, "verify", f"--root={root}", str(root / "etc" / "systemd" / "system" / unit.name))


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_verifies_without_warnings(unit_root, unit):
    result = verify(unit_root, unit)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert output == "", output


def test_systemd_verify_does_report_a_broken_unit(unit_root):
    # The check above is live: the same set-up reports a bad value, an unknown key
    # and a command that does not exist.
    unit = unit_root / "etc" / "systemd" / "system" / UNIT.name
    text = unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly\nHardenEverything=yes")
    unit.write_text(text.replace("/opt/pillarwatch/bin/pillarwatch", "/opt/nowhere/pillarwatch"))
    result = verify(unit_root)
    output = result.stdout + result.stderr
    assert "strictly" in output and "HardenEverything" in output
    assert "/opt/nowhere/pillarwatch" in output and result.returncode != 0


@pytest.mark.parametrize("unit_file", UNITS, ids=[u.name for u in UNITS])
def test_systemd_unit_exposure_stays_low(unit_root, unit_file):
    tool = need("systemd-analyze", "systemd")
    unit = unit_root / "etc" / "systemd" / "system" / unit_file.name
    # --threshold is tenths: 20 is an exposure of 2.0 ("OK"); the units score about 1.2.
    result = run(tool, "security", "--offline=yes", f"--root={unit_root}", "--threshold=20", "--no-pager", str(unit))
    level = re.search(rf"Overall exposure level for {re.escape(unit_file.name)}: (\d+\.\d+)", result.stdout)
    assert result.returncode == 0 and level, result.stdout + result.stderr
    assert float(level.group(1)) <= 2.0


def test_systemd_unit_runs_the_daemon_hardened():
    s = unit_settings(UNIT.read_text())
    one = {key: values[-1] for key, values in s.items()}
    assert one["ExecStart"].split()[1:] == ["daemon", "--config", CONFIG_FILE]  # API on api.host: 127.0.0.1
    assert "0.0.0.0" not in UNIT.read_text()
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["Restart"] == "on-failure" and one["RestartPreventExitStatus"] == "2"
    assert one["KillSignal"] == "SIGTERM" and seconds(one["TimeoutStopSec"]) > SHUTDOWN_GRACE
    assert one["DynamicUser"] == "yes" and one["StateDirectory"] == "pillarwatch"
    assert "Environment" in s and "PILLARWATCH_DB=%S/pillarwatch/pillarwatch.db" in s["Environment"]
    for key, value in {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes",
        "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
    }.items():
        assert one[key] == value, key
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # git must fork and exec: @system-service keeps @process; nothing removes it again.
    assert s["SystemCallFilter"][0] == "@system-service"
    assert not any("@process" in f for f in s["SystemCallFilter"][1:])
    credentials = unit_settings((DROPINS / "credentials.conf").read_text())
    assert all(":" in c and c.split(":", 1)[1].startswith("/etc/pillarwatch/credentials/") for c in credentials["LoadCredential"])


def test_systemd_worker_unit_is_sandboxed_as_the_daemon_is():
    daemon, worker = unit_settings(UNIT.read_text()), unit_settings(WORKER_UNIT.read_text())
    one = {key: values[-1] for key, values in worker.items()}
    assert one["ExecStart"].split()[1:] == ["worker", "--config", CONFIG_FILE, "--cache-dir", "%S/pillarwatch-worker/cache"]
    assert one["StateDirectory"] == "pillarwatch-worker" and one["WorkingDirectory"] == "%S/pillarwatch-worker"
    # The broker's password: a root-only file read before privileges are dropped; optional (a broker without one).
    assert one["EnvironmentFile"] == "-/etc/pillarwatch/credentials/broker.env"
    assert one["Restart"] == "on-failure" and one["RestartPreventExitStatus"] == "2"
    # Celery's warm shutdown lets a collection run to its hard limit: a git source's default timeout plus 10 s.
    assert one["KillSignal"] == "SIGTERM" and one["KillMode"] == "mixed"
    git_timeout = GitSource.model_fields["timeout_seconds"].default
    assert seconds(one["TimeoutStopSec"]) > CelerySettings().time_limits(git_timeout)[1]
    own = {"ExecStart", "ExecReload", "EnvironmentFile", "Environment", "TimeoutStopSec", "StateDirectory",
           "WorkingDirectory", "Description"}
    assert {k: v for k, v in worker.items() if k not in own} == {k: v for k, v in daemon.items() if k not in own}


# --- Kubernetes ------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    """Every resource of deploy/kubernetes by kind, read from the files kustomization.yaml lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    found: dict[str, dict[str, Any]] = {}
    for name in listed:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            assert doc["kind"] not in found, f"two {doc['kind']} resources"
            found[doc["kind"]] = doc
    return found


def test_kubernetes_manifests_match_the_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[test]' (kubernetes-validate)")
    from kubernetes_validate import utils

    versions = utils.all_versions()
    for kind, doc in manifests().items():
        for version in sorted({versions[0], versions[-1]}):  # the oldest and the newest Kubernetes it knows
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{kind} against Kubernetes {version}: {exc.message} at {'.'.join(map(str, exc.path))}")


def test_kubernetes_schema_check_does_catch_mistakes():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[test]' (kubernetes-validate)")
    deployment = manifests()["Deployment"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["httpGett"] = probe.pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError, match="httpGett"):
        kubernetes_validate.validate(deployment, kubernetes_validate.utils.latest_version(), strict=True)


def configmap_config(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """The ConfigMap's configuration loaded by pillarwatch itself, with the pod's plain env values."""
    path = tmp_path / "pillarwatch.yaml"
    path.write_text(manifests()["ConfigMap"]["data"]["pillarwatch.yaml"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_config(path)


def test_kubernetes_deployment_invariants(tmp_path, monkeypatch):
    m = manifests()
    deployment, secret, service, pvc, configmap = m["Deployment"], m["Secret"], m["Service"], m["PersistentVolumeClaim"], m["ConfigMap"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # one writer of one SQLite file
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]

    # Probes: liveness (and start-up) on /healthz; readiness on /readyz, with the token.
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    readiness = container["readinessProbe"]
    assert readiness.get("httpGet", {}).get("path") == "/readyz" or "/readyz" in readiness["exec"]["command"]

    # The database folder is the claim; the configuration is the ConfigMap.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    plain_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    config = configmap_config(tmp_path, plain_env, monkeypatch)
    assert mounts[str(config.store_path.parent)]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    args = container["args"]
    config_path = Path(args[args.index("--config") + 1])
    assert mounts[str(config_path.parent)]["configMap"]["name"] == configmap["metadata"]["name"]
    assert config_path.name in configmap["data"]
    assert args[0] == "daemon" and args[args.index("--host") + 1] == "0.0.0.0"

    # Tokens come from the Secret, through env; the API reads the one the config names.
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert from_secret and all(ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
                               for ref in from_secret.values())
    assert config.api.token_env in from_secret

    # The Service reaches the API port.
    [port] = container["ports"]
    assert port["containerPort"] == config.api.port
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["targetPort"] == port["name"]
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert spec["selector"]["matchLabels"].items() <= labels.items()

    # Non-root, read-only, no privileges; time enough to finish running collections.
    pod_security, security = pod["securityContext"], container["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == image_uid()
    assert pod_security["fsGroup"] == image_uid()
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["terminationGracePeriodSeconds"] > config.daemon.shutdown_grace.total_seconds()
    assert "/tmp" in mounts and "emptyDir" in mounts["/tmp"]
    assert container["resources"]["limits"]["memory"]


def test_secret_holds_placeholders_only():
    secret = manifests()["Secret"]
    assert secret["type"] == "Opaque" and "data" not in secret
    assert all(value == "" or value.startswith("CHANGE-ME") for value in secret["stringData"].values())


# --- Prometheus rules ------------------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules():
    result = run(need("promtool", "prometheus"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_fire_the_alerts():
    result = run(need("promtool", "prometheus"), "test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_scrape_config_with_the_rules(tmp_path):
    promtool = need("promtool", "prometheus")
    config = yaml.safe_load((RULES.parent / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["job_name"] == "pillarwatch"  # PillarwatchDown selects up{job="pillarwatch"}
    assert config["rule_files"] == [RULES.name]
    # promtool checks that the token file exists: give it one where it can look.
    token = tmp_path / "token"
    token.write_text("a-token\n")
    job["authorization"]["credentials_file"] = str(token)
    shutil.copy(RULES, tmp_path / RULES.name)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_every_alert_has_a_unit_test_that_fires_it():
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in rules()}
    assert names <= fired, names - fired
    assert {"PillarwatchPillarScoreDropped", "PillarwatchSourceFailing", "PillarwatchOutboxBacklog",
            "PillarwatchDown", "PillarwatchSnapshotStale"} <= names


def test_rules_have_for_severity_and_annotations():
    for rule in rules():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# --- Grafana dashboard -----------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def data_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in data_panels(dashboard()) for target in panel["targets"]]


def test_dashboard_structure():
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert variables["project"]["type"] == "query" and "project" in variables["project"]["definition"]
    ids = [p["id"] for p in board["panels"]] + [p["id"] for row in board["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids))
    panels = list(data_panels(board))
    assert len(panels) >= 8
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
    exprs = " ".join(dashboard_exprs())
    for wanted in ("pillarwatch_overall_score_percent", "pillarwatch_pillar_score_percent", "pillarwatch_criterion_status",
                   "pillarwatch_source_failing", "histogram_quantile", "pillarwatch_outbox_messages"):
        assert wanted in exprs


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus sees it once Grafana has filled in its variables."""
    for variable, value in {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$project": ".*", "$pillar": ".*"}.items():
        expr = expr.replace(variable, value)
    return expr


def test_promtool_parses_every_dashboard_query(tmp_path):
    promtool = need("promtool", "prometheus")
    records = [{"record": f"dashboard:query_{n}", "expr": grafana_to_promql(e)} for n, e in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- metric names ----------------------------------------------------------------------


def exported_series() -> set[str]:
    """Series names daemon/web/metrics.py exports: each family with its type's suffixes."""
    families: dict[str, str] = {}
    if METRICS_MODULE.exists():
        kinds = {"GaugeMetricFamily": "gauge", "CounterMetricFamily": "counter", "HistogramMetricFamily": "histogram"}
        for node in ast.walk(ast.parse(METRICS_MODULE.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in kinds:
                name = node.args[0]
                assert isinstance(name, ast.Constant), "metric names in daemon/web/metrics.py are literals"
                families[name.value] = kinds[node.func.id]
    else:
        families = FALLBACK_FAMILIES
    assert families
    return {name + suffix for name, kind in families.items() for suffix in SUFFIXES[kind]}


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\b(pillarwatch_[a-z0-9_]+|up)\b(?!\s*\()", without_strings))


@pytest.mark.parametrize("where", ["rules", "dashboard"])
def test_every_metric_named_is_exported(where):
    if where == "rules":
        exprs = [r["expr"] for r in rules()]
    else:  # the panels' queries and the variables' label_values(...)
        exprs = dashboard_exprs() + [v["definition"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    used = set().union(*map(metric_names, exprs))
    assert used, where
    unknown = used - exported_series() - PROMETHEUS_OWN
    assert not unknown, f"{where} name series pillarwatch does not export: {sorted(unknown)}"


# --- container image and compose -------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def image_uid() -> int:
    [user] = [args for op, args in final_stage() if op == "USER"]
    return int(user.split(":")[0])


def test_dockerfile_is_multi_stage_non_root_with_healthcheck():
    instructions = dockerfile_instructions()
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) >= 2 and all(re.search(r"\bAS \w+", s, re.I) for s in stages)
    assert any("from=build" in args or "--from=build" in args for op, args in instructions if op in ("RUN", "COPY"))
    final = dict((op, args) for op, args in final_stage())  # the last of each
    assert image_uid() != 0 and final["USER"].split(":")[0] not in ("root", "0")
    assert [args for op, args in final_stage() if op == "VOLUME"] == [STORE_DIR]
    assert "/healthz" in final["HEALTHCHECK"] and "python" in final["HEALTHCHECK"]
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert any(op == "RUN" and re.search(r"apt-get install .*\bgit\b", args) for op, args in final_stage())
    command = json.loads(final["ENTRYPOINT"]) + json.loads(final["CMD"])
    assert command[-5:] == ["daemon", "--config", CONFIG_FILE, "--host", "0.0.0.0"] and "pillarwatch" in command
    assert f"PILLARWATCH_DB={STORE_DIR}/pillarwatch.db" in final["ENV"]
    # Everything it copies from the repository exists.
    for op, args in instructions:
        if op == "COPY" and "--from" not in args:
            for source in [a for a in args.split() if not a.startswith("--")][:-1]:
                assert (REPO_ROOT / source).exists(), source


def test_compose_file_keeps_data_on_a_volume_and_runs_non_root():
    compose = yaml.safe_load(COMPOSE.read_text())
    service = compose["services"]["pillarwatch"]
    assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    volumes = {}
    for volume in service["volumes"]:  # SOURCE:TARGET[:MODE], SOURCE perhaps ${VAR:-default}
        source, target, mode = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(\w+))?", volume).groups()
        volumes[target] = (source, mode)
    assert volumes[STORE_DIR][0] in compose["volumes"]  # a named volume
    source, mode = volumes[CONFIG_FILE]
    assert mode == "ro"
    default_config = re.fullmatch(r"\$\{[A-Z_]+:-([^}]+)\}", source)
    assert default_config and (COMPOSE.parent / default_config.group(1)).resolve() == DEPLOY_CONFIG
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    assert int(service["user"].split(":")[0]) == image_uid()
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert seconds(service["stop_grace_period"]) > SHUTDOWN_GRACE
    assert service["command"][service["command"].index("--host") + 1] == "0.0.0.0"
    # Secrets come from the environment, never written in the file.
    env = service["environment"]
    assert env["PILLARWATCH_API_TOKEN"].startswith("${") and env["GITHUB_TOKEN"].startswith("${")
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])


# --- the deployed configuration, run for real ------------------------------------------


def test_deploy_configs_are_valid(tmp_path, monkeypatch):
    monkeypatch.delenv("PILLARWATCH_DB", raising=False)
    config = load_config(DEPLOY_CONFIG)
    assert config.store_path == Path(STORE_DIR) / "pillarwatch.db"
    assert config.api.host == "127.0.0.1" and config.api.token_env == "PILLARWATCH_API_TOKEN"
    assert config.daemon.shutdown_grace.total_seconds() == SHUTDOWN_GRACE
    k8s = configmap_config(tmp_path, {}, monkeypatch)
    assert k8s.store_path.parent == Path(STORE_DIR) and k8s.api.token_env == config.api.token_env


def probe(path: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HEALTHCHECK), path], env=env, capture_output=True, text=True, timeout=30)


def test_deploy_config_runs_the_daemon_and_the_probes_answer(tmp_path, git_repo: GitRepo):
    git_repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
    git_repo.write("docs/STATUS.md", "# Status\n\nCheckpoint/replay API backward compatibility: 0.60\n")
    git_repo.commit("a service")
    port, token = free_port(), "a-test-token"
    env = {**os.environ, "PILLARWATCH_DB": str(tmp_path / "state" / "pillarwatch.db"),
           "PILLARWATCH_REPO_URL": git_repo.path.as_uri(), "PILLARWATCH_API_TOKEN": token}
    env.pop("PILLARWATCH_API_TOKEN_FILE", None)
    log = tmp_path / "daemon.log"
    # The container's command, but on loopback: this is a shared machine.
    with open(log, "wb") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "daemon", "--config", str(DEPLOY_CONFIG), "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    probe_env = {**env, "PILLARWATCH_API_URL": base}
    try:
        def scrape() -> set[str]:
            request = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
            return {line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")}

        # Ready once a source answered; every series the rules and the dashboard name
        # is in a real scrape once the first snapshot is stored.
        used = set().union(*map(metric_names, [r["expr"] for r in rules()] + dashboard_exprs())) - PROMETHEUS_OWN
        deadline = time.monotonic() + 60
        while probe("/readyz", probe_env).returncode != 0 or not used <= (scraped := scrape()):
            assert daemon.poll() is None, log.read_text()
            if time.monotonic() > deadline:
                pytest.fail(f"not ready, or series missing from /metrics: {sorted(used - scrape())}\n{log.read_text()}")
            time.sleep(0.2)
        assert "pillarwatch_overall_score_percent" in scraped
        assert probe("/healthz", {**probe_env, "PILLARWATCH_API_TOKEN": ""}).returncode == 0  # open, as Docker's HEALTHCHECK calls it
        refused = probe("/readyz", {**probe_env, "PILLARWATCH_API_TOKEN": ""})
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr
        token_file = tmp_path / "token"
        token_file.write_text(token + "\n")
        assert probe("/readyz", {**probe_env, "PILLARWATCH_API_TOKEN": "", "PILLARWATCH_API_TOKEN_FILE": str(token_file)}).returncode == 0

        # systemd's ExecReload and `docker compose kill -s HUP`, then a stop within TimeoutStopSec.
        daemon.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert daemon.poll() is None and probe("/healthz", probe_env).returncode == 0
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=seconds(unit_settings(UNIT.read_text())["TimeoutStopSec"][-1])) == 0, log.read_text()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
