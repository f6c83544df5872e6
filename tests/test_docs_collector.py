"""collectors/docs.py on real files and a real git repository."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from collectors import docs
from collectors.docs import DocSource, collect
from collectors.evidence import EvidenceRequest
from collectors.markdown import normalise_title
from tests.support.guarded import within

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)

STATUS = """\
# Durability status

Last reviewed by the team.

## Criteria

1. **Survive restart** without *semantic* drift: 0.60 (was 0.50)
2. `Idempotent` replay: .9
- Exactly-once delivery — outbox: 1
* Snapshot compaction: 1.0

Scheduler stress tests: 5/5
Capability contracts: **122/122** pass
Broken gauge: 3/0

## Rollout checklist

- [x] write the design
- [X] land the outbox
- [ ] chaos test
  - [x] nested item counts too

### Notes

- [ ] a task under a sub-heading is still in the section

## Other tasks

- [ ] not part of the rollout checklist

## Prose only

Nothing to tick here. TODO: revisit.
TODO again, and todo in lower case.
"""


def _doc(tmp_path: Path, text: str | bytes = STATUS, name: str = "STATUS.md", **kw: object) -> DocSource:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return DocSource(id="status", path=str(path), **kw)  # type: ignore[arg-type]


def _one(source: DocSource, signal: str, **params: object):
    result = collect(source, [EvidenceRequest(signal=signal, params=params)], now=NOW)
    assert result.answered
    (item,) = result.evidence
    assert item.signal == signal and item.params == params
    assert item.source == "status" and item.observed_at == NOW
    assert item.provenance.path == source.path
    return item


# --- declared_score ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "score", "line"),
    [
        ("Survive restart without semantic drift", 0.60, 7),
        ("survive RESTART, without semantic-drift!", 0.60, 7),
        ("Idempotent replay", 0.9, 8),
        ("exactly once delivery outbox", 1.0, 9),
        ("**Snapshot compaction**", 1.0, 10),
    ],
)
def test_declared_score_is_read_with_its_line(tmp_path: Path, title: str, score: float, line: int) -> None:
    item = _one(_doc(tmp_path), "declared_score", title=title)
    assert item.ok
    assert item.value == {"score": score}
    assert item.provenance.line == line
    assert item.provenance.commit is None


@pytest.mark.parametrize("written", ["0.6", ".60", "0.60", "1", "1.0", "0", "0.60."])
def test_declared_score_number_forms(tmp_path: Path, written: str) -> None:
    item = _one(_doc(tmp_path, f"intro\n\nScore me: {written}\n"), "declared_score", title="Score me")
    assert item.value == {"score": float(written.rstrip("."))}
    assert item.provenance.line == 3


@pytest.mark.parametrize("written", ["1.5", "60", "-0.2"])
def test_declared_score_outside_zero_one_is_malformed(tmp_path: Path, written: str) -> None:
    item = _one(_doc(tmp_path, f"# x\n\nScore me: {written}\n"), "declared_score", title="Score me")
    assert item.error is not None and item.error.kind == "malformed"
    assert "STATUS.md:3" in item.error.message and written in item.error.message
    assert "\n" not in item.error.message


def test_declared_score_ignores_percentages_and_ratios(tmp_path: Path) -> None:
    text = "Coverage: 60%\n\nTests: 5/5\n"
    for title in ("Coverage", "Tests"):
        item = _one(_doc(tmp_path, text), "declared_score", title=title)
        assert item.error is not None and item.error.kind == "not_found"


def test_missing_title_is_not_found_naming_document_and_title(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "declared_score", title="Zero downtime deploys")
    assert item.value is None
    assert item.error is not None and item.error.kind == "not_found"
    assert "STATUS.md" in item.error.message and "Zero downtime deploys" in item.error.message
    assert "\n" not in item.error.message


def test_score_inside_a_code_block_is_not_a_declaration(tmp_path: Path) -> None:
    text = "```\nSurvive restart: 0.9\n```\n\nSurvive restart: 0.4\n"
    item = _one(_doc(tmp_path, text), "declared_score", title="Survive restart")
    assert item.value == {"score": 0.4}
    assert item.provenance.line == 5


def test_line_numbers_survive_windows_line_endings(tmp_path: Path) -> None:
    source = _doc(tmp_path, b"# Title\r\n\r\nFirst: 0.1\r\nSecond: 0.2\r\n")
    item = _one(source, "declared_score", title="Second")
    assert item.value == {"score": 0.2} and item.provenance.line == 4


# --- ratio -------------------------------------------------------------------------


def test_ratio_values_and_lines(tmp_path: Path) -> None:
    source = _doc(tmp_path)
    item = _one(source, "ratio", label="Scheduler stress tests")
    assert item.value == {"ratio": 1.0, "numerator": 5, "denominator": 5}
    assert item.provenance.line == 12
    item = _one(source, "ratio", label="capability contracts")
    assert item.value == {"ratio": 1.0, "numerator": 122, "denominator": 122}
    assert item.provenance.line == 13


def test_ratio_partial(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path, "- Flaky suites fixed: 3 / 4 so far\n"), "ratio", label="Flaky suites fixed")
    assert item.value == {"ratio": 0.75, "numerator": 3, "denominator": 4}
    assert item.provenance.line == 1


def test_ratio_zero_denominator_is_malformed(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "ratio", label="Broken gauge")
    assert item.error is not None and item.error.kind == "malformed"
    assert "STATUS.md:14" in item.error.message


def test_missing_ratio_is_not_found(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "ratio", label="Survive restart without semantic drift")
    assert item.error is not None and item.error.kind == "not_found"
    assert "Survive restart without semantic drift" in item.error.message


# --- checklist ---------------------------------------------------------------------


def test_checklist_counts_items_in_the_section_only(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "checklist", heading="Rollout checklist")
    assert item.value == {"ratio": 3 / 5, "done": 3, "total": 5}
    assert item.provenance.line == 16


def test_checklist_heading_may_be_contained(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "checklist", heading="rollout")
    assert item.provenance.line == 16 and item.value is not None and item.value["total"] == 5


def test_checklist_exact_heading_beats_containing_one(tmp_path: Path) -> None:
    text = "## Tasks for later\n\n- [ ] a\n\n## Tasks\n\n- [x] b\n"
    item = _one(_doc(tmp_path, text), "checklist", heading="TASKS")
    assert item.value == {"ratio": 1.0, "done": 1, "total": 1}
    assert item.provenance.line == 5


def test_checklist_without_task_items_is_not_found(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "checklist", heading="Prose only")
    assert item.error is not None and item.error.kind == "not_found"
    assert "Prose only" in item.error.message


def test_checklist_missing_heading_is_not_found(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "checklist", heading="Migration plan")
    assert item.error is not None and item.error.kind == "not_found"
    assert "STATUS.md" in item.error.message and "Migration plan" in item.error.message


# --- mentions ----------------------------------------------------------------------


def test_mentions_in_the_whole_document(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "mentions", regex=r"(?i)todo")
    assert item.value == {"count": 3, "lines": [33, 34, 34]}
    assert item.provenance.line == 33


def test_mentions_in_a_section(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "mentions", regex=r"^- \[", heading="Rollout checklist")
    assert item.value == {"count": 4, "lines": [18, 19, 20, 25]}
    assert item.provenance.line == 16


def test_mentions_none_is_a_zero_count(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path), "mentions", regex=r"kubernetes")
    assert item.ok and item.value == {"count": 0, "lines": []}
    assert item.provenance.line is None


def test_mentions_lists_at_most_twenty_lines(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path, "hit\n" * 30), "mentions", regex="hit")
    assert item.value is not None
    assert item.value["count"] == 30 and item.value["lines"] == list(range(1, 21))


def test_mentions_rejects_an_invalid_regex() -> None:
    with pytest.raises(ValidationError, match="invalid regex"):
        docs.Mentions(regex="(unclosed")


def test_signal_models() -> None:
    assert set(docs.SIGNALS) == {"declared_score", "ratio", "checklist", "mentions"}
    defaults = {name: (m.default_field, m.default_transform) for name, m in docs.SIGNALS.items()}  # type: ignore[attr-defined]
    assert defaults == {
        "declared_score": ("score", "ratio"),
        "ratio": ("ratio", "ratio"),
        "checklist": ("ratio", "ratio"),
        "mentions": ("count", "bool"),
    }
    with pytest.raises(ValidationError):
        docs.DeclaredScore(title="x", extra=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DocSource(id="d", path="x.md", url="http://x")  # type: ignore[call-arg]


# --- normalisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("**Survive restart** without drift", "survive restart without drift"),
        ("`Idempotent` replay", "idempotent replay"),
        ("Exactly-once   delivery (outbox)!", "exactly once delivery outbox"),
        ("  _Traces_ cover every request-path.  ", "traces cover every request path"),
        ("[Metrics](https://example.invalid/m) have owners", "metrics have owners"),
        ("snake_case name", "snake case name"),
        ("Émission: à l'heure", "émission à l heure"),
    ],
)
def test_normalise_title(written: str, normal: str) -> None:
    assert normalise_title(written) == normal


# --- whole-document faults ---------------------------------------------------------


def _requests() -> list[EvidenceRequest]:
    return [
        EvidenceRequest(signal="declared_score", params={"title": "Survive restart"}),
        EvidenceRequest(signal="mentions", params={"regex": "x"}),
    ]


def _assert_failed(result, kind: str, *words: str) -> None:
    assert not result.answered
    assert result.error is not None and result.error.kind == kind
    for word in words:
        assert word in result.error.message
    assert "\n" not in result.error.message
    assert [e.error for e in result.evidence] == [result.error, result.error]
    assert [e.params for e in result.evidence] == [r.params for r in _requests()]


def test_missing_document(tmp_path: Path) -> None:
    source = DocSource(id="status", path=str(tmp_path / "nope.md"))
    result = collect(source, _requests(), now=NOW)
    _assert_failed(result, "not_found", "document not found", "nope.md")


def test_binary_document(tmp_path: Path) -> None:
    source = _doc(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", name="image.md")
    _assert_failed(collect(source, _requests(), now=NOW), "malformed", "binary", "image.md")


def test_non_utf8_document(tmp_path: Path) -> None:
    source = _doc(tmp_path, "Survive restart: 0.5 (café)\n".encode("latin-1"), name="latin.md")
    _assert_failed(collect(source, _requests(), now=NOW), "malformed", "UTF-8", "latin.md")


def test_oversized_document(tmp_path: Path) -> None:
    source = _doc(tmp_path, "Survive restart: 0.5\n" * 100, max_bytes=1000)
    _assert_failed(collect(source, _requests(), now=NOW), "malformed", "document too large", "STATUS.md")


def test_directory_instead_of_document(tmp_path: Path) -> None:
    (tmp_path / "dir.md").mkdir()
    source = DocSource(id="status", path=str(tmp_path / "dir.md"))
    _assert_failed(collect(source, _requests(), now=NOW), "malformed", "dir.md")


def test_fingerprint_follows_the_text(tmp_path: Path) -> None:
    source = _doc(tmp_path)
    first = collect(source, _requests(), now=NOW).fingerprint
    assert first is not None and len(first) == 16
    assert collect(source, _requests(), now=NOW).fingerprint == first
    _doc(tmp_path, STATUS + "\nmore\n")
    assert collect(source, _requests(), now=NOW).fingerprint != first


def test_unknown_signal_is_an_item_error(tmp_path: Path) -> None:
    result = collect(_doc(tmp_path), [EvidenceRequest(signal="headline", params={})], now=NOW)
    assert result.answered
    assert result.evidence[0].error is not None and result.evidence[0].error.kind == "unsupported"


def test_invalid_params_are_malformed_as_for_every_kind(tmp_path: Path) -> None:
    result = collect(_doc(tmp_path), [EvidenceRequest(signal="ratio", params={"lable": "x"})], now=NOW)
    error = result.evidence[0].error
    assert result.answered and error is not None and error.kind == "malformed"
    assert error.message.startswith("invalid params for doc signal 'ratio': ")


# --- inside a git repository -------------------------------------------------------


def test_document_read_at_an_older_commit(git_repo) -> None:
    git = pytest.importorskip("collectors.git")
    git_repo.write("docs/STATUS.md", "# Status\n\nSurvive restart: 0.40\n")
    old = git_repo.commit("first", when=datetime(2026, 1, 1, tzinfo=timezone.utc))
    git_repo.write("docs/STATUS.md", "# Status\n\nIntro line.\n\nSurvive restart: 0.90\n")
    tip = git_repo.commit("second", when=datetime(2026, 2, 1, tzinfo=timezone.utc))

    repo = git.GitSource(id="repo", path=str(git_repo.path))
    source = DocSource(id="status", path="docs/STATUS.md", git="repo")
    request = [EvidenceRequest(signal="declared_score", params={"title": "Survive restart"})]

    at_old = collect(source, request, now=NOW, repo=repo, commit=old)
    at_tip = collect(source, request, now=NOW, repo=repo, commit=tip)
    assert at_old.answered and at_tip.answered
    assert at_old.evidence[0].value == {"score": 0.40}
    assert at_old.evidence[0].provenance.model_dump() == {
        "commit": old, "path": "docs/STATUS.md", "line": 3, "url": None
    }
    assert at_tip.evidence[0].value == {"score": 0.90}
    assert at_tip.evidence[0].provenance.line == 5 and at_tip.evidence[0].provenance.commit == tip
    assert (at_old.fingerprint, at_tip.fingerprint) == (old, tip)


def test_document_missing_from_the_commit_fails_the_source(git_repo, tmp_path: Path) -> None:
    git = pytest.importorskip("collectors.git")
    git_repo.write("README.md", "hello\n")
    sha = git_repo.commit("first")
    repo = git.GitSource(id="repo", path=str(git_repo.path))
    source = DocSource(id="status", path="docs/STATUS.md", git="repo")
    result = collect(source, _requests(), now=NOW, repo=repo, commit=sha, cache_dir=tmp_path / "cache")
    assert not result.answered and result.error is not None
    assert result.error.kind == "not_found" and "docs/STATUS.md" in result.error.message
    assert all(e.error == result.error for e in result.evidence)


def test_document_in_git_without_its_repository_fails_cleanly(tmp_path: Path) -> None:
    source = DocSource(id="status", path="docs/STATUS.md", git="repo")
    result = collect(source, _requests(), now=NOW)
    assert not result.answered and result.error is not None
    assert "repo" in result.error.message


# --- hostile documents -------------------------------------------------------------


def test_a_line_of_80000_spaces_parses_in_linear_time(tmp_path: Path) -> None:
    # Quadratic parsing took minutes on this; linear takes milliseconds. The guard is generous.
    long_line = "Survive" + " " * 80_000 + "restart"
    text = f"# Status\n\n{long_line}\n\n{long_line}: 3/\n\nSurvive restart: 0.7\n\nTests: 4/5\n"
    source = _doc(tmp_path, text)
    requests = [EvidenceRequest(signal="declared_score", params={"title": "Survive restart"}),
                EvidenceRequest(signal="ratio", params={"label": "Tests"}),
                EvidenceRequest(signal="declared_score", params={"title": "missing"})]
    code = f"""if True:
        from datetime import datetime
        from collectors.docs import DocSource, collect
        from collectors.evidence import EvidenceRequest
        source = DocSource.model_validate_json({source.model_dump_json()!r})
        requests = [EvidenceRequest.model_validate_json(r) for r in {[r.model_dump_json() for r in requests]!r}]
        print(collect(source, requests, now=datetime.fromisoformat({NOW.isoformat()!r})).model_dump_json())
    """
    result = within(20, code)
    score, ratio, missing = result["evidence"]
    assert score["value"] == {"score": 0.7} and score["provenance"]["line"] == 7
    assert ratio["value"] == {"ratio": 0.8, "numerator": 4, "denominator": 5}
    assert missing["error"]["kind"] == "not_found"


@pytest.mark.parametrize(("written", "score"), [("0,70", 0.70), ("0,7", 0.7), ("1,0", 1.0), (",5", 0.5)])
def test_a_decimal_comma_is_read_as_a_decimal_point(tmp_path: Path, written: str, score: float) -> None:
    item = _one(_doc(tmp_path, f"# x\n\nDocs parity: {written}\n"), "declared_score", title="Docs parity")
    assert item.value == {"score": score}


def test_a_decimal_comma_out_of_range_is_malformed_not_zero(tmp_path: Path) -> None:
    item = _one(_doc(tmp_path, "# x\n\nDocs parity: 0,70,5\n\nTests: 1,5\n"), "declared_score", title="Tests")
    assert item.error is not None and item.error.kind == "malformed" and "1,5" in item.error.message


def test_a_document_that_is_not_utf8_is_refused_the_same_way_through_git(git_repo, tmp_path: Path) -> None:
    git = pytest.importorskip("collectors.git")
    git_repo.write("docs/latin.md", "Survive restart: 0.5 (café)\n".encode("latin-1"))
    sha = git_repo.commit("latin-1 document")
    repo = git.GitSource(id="repo", path=str(git_repo.path))
    source = DocSource(id="status", path="docs/latin.md", git="repo")
    result = collect(source, _requests(), now=NOW, repo=repo, commit=sha, cache_dir=tmp_path / "cache")
    _assert_failed(result, "malformed", "UTF-8", "docs/latin.md")
    on_disk = collect(_doc(tmp_path, (git_repo.path / "docs/latin.md").read_bytes(), name="latin.md"), _requests(), now=NOW)
    _assert_failed(on_disk, "malformed", "UTF-8", "latin.md")
