"""Configuration: validation with file:line:field errors, templates, interpolation."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config.durations import parse_duration
from daemon.config.loading import load_config
from daemon.errors import ConfigError
from tests.support.paths import REPO_ROOT

GOOD = """\
version: 1
store: data/pw.db
templates:
  pillars:
    shared:
      id: shared
      title: Shared pillar
      criteria:
        - id: readme
          title: Readme present
          checks:
            - {source: repo, signal: file_exists, path: README.md}
projects:
  - id: one
    sources:
      - {id: repo, kind: git, path: "${PW_TEST_REPO:-./repo}"}
      - {id: status, kind: doc, git: repo, path: docs/STATUS.md}
    pillars:
      - template: shared
      - id: own
        title: Own pillar
        criteria:
          - id: declared
            title: Survive restart without semantic drift
            checks:
              - {source: status, signal: declared_score}
  - id: two
    sources:
      - {id: repo, kind: git, url: "https://example.invalid/x.git", branch: main}
    pillars:
      - {template: shared, id: renamed, title: Renamed, weight: 2}
"""


def write(tmp_path: Path, text: str, name: str = "pw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_good_config_loads_with_templates_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("PW_TEST_REPO", raising=False)
    cfg = load_config(write(tmp_path, GOOD))
    one, two = cfg.projects
    assert [p.id for p in one.expanded_pillars] == ["shared", "own"]
    assert [(p.id, p.title, p.weight) for p in two.expanded_pillars] == [("renamed", "Renamed", 2)]
    assert one.sources[0].path == str(tmp_path / "repo")
    assert cfg.store_path == tmp_path / "data" / "pw.db"
    # A declared score is looked up by the criterion's own title.
    check = one.expanded_pillars[1].criteria[0].checks[0]
    assert check.request().params == {"title": "Survive restart without semantic drift"}


def test_environment_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("PW_TEST_REPO", "/srv/checkout")
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.projects[0].sources[0].path == "/srv/checkout"


def test_missing_environment_variable_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("${PW_TEST_REPO:-./repo}", "${PW_SURELY_UNSET_VAR}"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:16: projects[0].sources[0].path: environment variable PW_SURELY_UNSET_VAR is not set")


@pytest.mark.parametrize(
    ("edit", "line", "expected"),
    [
        # unknown key
        (("title: Readme present", "title: Readme present\n          colour: red"), 11, "templates.pillars.shared.criteria[0].colour: unknown key"),
        # wrong type
        (("title: Own pillar", "title: Own pillar\n        weight: heavy"), 22, "projects[0].pillars[1].weight: input should be a valid number"),
        # missing field
        (("- {source: repo, signal: file_exists, path: README.md}", "- {source: repo, signal: file_count}"), 12, "templates.pillars.shared.criteria[0].checks[0].glob: field required"),
        # bad regex
        (("- {source: repo, signal: file_exists, path: README.md}", "- {source: repo, signal: content_match, glob: '*', regex: 'a(b'}"), 12, "checks[0].regex: invalid regex"),
        # missing source
        (("- {source: status, signal: declared_score}", "- {source: nowhere, signal: declared_score}"), 26, "projects[0].pillars[1].criteria[0].checks[0].source: no source 'nowhere' in project 'one'"),
        # signal of the wrong source kind
        (("- {source: status, signal: declared_score}", "- {source: repo, signal: declared_score}"), 26, "signal: signal 'declared_score' needs a doc source, but 'repo' is a git source"),
        # unknown signal
        (("- {source: status, signal: declared_score}", "- {source: status, signal: vibes}"), 26, "checks[0]: unknown signal 'vibes'"),
        # unknown template
        (("- {template: shared, id: renamed", "- {template: nope, id: renamed"), 31, "projects[1].pillars[0].template: no pillar template 'nope'"),
        # unsafe URL
        (("https://example.invalid/x.git", "ext::sh -c touch% /tmp/pwned"), 29, "projects[1].sources[0]"),
        # a criterion with no way to score
        (("            checks:\n              - {source: status, signal: declared_score}\n", ""), 23, "projects[0].pillars[1].criteria[0]: a criterion needs exactly one of"),
    ],
)
def test_bad_config_names_file_line_and_field(tmp_path, edit, line, expected):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems[0]
    assert expected in problems[0]


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  - id: two\n", "  - id: two\n   bad: [unclosed\n"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:")
    assert "YAML syntax error" in problem
    assert problem.startswith(f"{path}:28: YAML syntax error")


def test_duplicate_key_and_duplicate_ids_are_errors(tmp_path):
    dup_key = write(tmp_path, GOOD.replace("store: data/pw.db", "store: data/pw.db\nstore: other.db"), "a.yaml")
    assert "store: duplicate key" in problems_of(dup_key)[0]
    dup_id = write(tmp_path, GOOD.replace("- id: two", "- id: one"), "b.yaml")
    assert "projects[1].id: duplicate project id 'one'" in problems_of(dup_id)[0]


def test_missing_and_empty_files(tmp_path):
    assert "configuration file not found" in problems_of(tmp_path / "nope.yaml")[0]
    assert "must be a mapping" in problems_of(write(tmp_path, "", "empty.yaml"))[0]


@pytest.mark.parametrize("text,seconds", [("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600), (90, 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_shipped_configurations_are_valid():
    for path in [REPO_ROOT / "config" / "pillarwatch.yaml", *sorted((REPO_ROOT / "config" / "examples").glob("*.yaml"))]:
        cfg = load_config(path)
        assert cfg.projects, path


def test_example_has_the_reference_pillars_and_exact_criteria_titles():
    cfg = load_config(REPO_ROOT / "config" / "examples" / "target-architecture.yaml")
    titles = {p.title: [c.title for c in p.criteria] for p in cfg.projects[0].expanded_pillars}
    assert titles == {
        "Durability (Temporal-inspired)": [
            "Survive restart without semantic drift",
            "Retry/timer/resume explicit and test-covered",
            "Checkpoint/replay API backward compatibility",
        ],
        "Contracts, Artifacts, Promotion (Dagster/dbt-inspired)": [
            "Orchestrated reproducible pipeline stages",
            "Traceable lineage source -> artifacts",
            "CI/local equivalent governance outcomes",
        ],
        "Policy and Tenancy (Kubernetes/OPA-inspired)": [
            "Externally explainable and auditable policy decisions",
            "Tenant isolation consistency",
            "Existing runtime safety controls preserved",
        ],
        "Developer Experience and Distribution (Stripe-like/Vercel-like)": [
            "Time-to-first-success measured and improved",
            "Docs/examples parity-validated",
            "Environment promotion flow documented/reproducible",
            "OSS baseline without paid SaaS",
        ],
    }


def test_every_signal_parameter_reaches_the_request(tmp_path):
    text = GOOD.replace(
        "- {source: status, signal: declared_score}",
        "- {source: status, signal: ratio, label: Scheduler stress tests, weight: 2, field: ratio}\n"
        "              - {source: status, signal: mentions, regex: TODO, heading: Gaps, transform: {thresholds: [[0, 1], [1, 0]]}}",
    )
    cfg = load_config(write(tmp_path, text))
    ratio, mentions = cfg.projects[0].expanded_pillars[1].criteria[0].checks
    assert ratio.request().model_dump() == {"signal": "ratio", "params": {"label": "Scheduler stress tests"}}
    assert mentions.request().params == {"regex": "TODO", "heading": "Gaps"}


def test_yaml_1_2_reading_and_merge_keys_refused_with_their_line(tmp_path):
    # YAML 1.2: `yes` and `no` are words, so a title may be one; a merge key (YAML 1.1 only) is refused, not ignored.
    config = load_config(write(tmp_path, GOOD.replace("title: Own pillar", "title: no"), "words.yaml"))
    assert config.projects[0].pillars[1].title == "no"
    merged = GOOD.replace("      - id: own\n", "      - &own\n        id: own\n").replace(
        "      - {template: shared, id: renamed, title: Renamed, weight: 2}",
        "      - {<<: *own, id: renamed}")
    problems = problems_of(write(tmp_path, merged, "merge.yaml"))
    assert [p.split("/")[-1] for p in problems] == [f"merge.yaml:{merged.splitlines().index('      - {<<: *own, id: renamed}') + 1}: projects[1].pillars[0].<<: merge keys (<<) are not supported: repeat the keys, or use a template"]


def test_a_field_is_placed_on_its_line_in_a_large_file(tmp_path):
    # Lines are found only when a message needs one; they must still be right far down a file.
    criteria = "".join(f"          - id: c{n}\n            title: Criterion {n}\n            not_applicable: later\n"
                       for n in range(500))
    text = GOOD.replace("        criteria:\n          - id: declared\n", "        criteria:\n" + criteria + "          - id: declared\n")
    bad = text.replace("          - id: c321\n            title: Criterion 321\n", "          - id: c321\n            title: ''\n")
    line = bad.splitlines().index("            title: ''") + 1
    assert [p.split("/")[-1] for p in problems_of(write(tmp_path, bad, "big.yaml"))] == [
        f"big.yaml:{line}: projects[0].pillars[1].criteria[321].title: string should have at least 1 character"]
