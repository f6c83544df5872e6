"""daemon/run/progress_doc.py: reading hand-written progress documents and checking their sums."""

from __future__ import annotations

from datetime import date

import pytest

from daemon.errors import InputError
from daemon.run.progress_doc import Figure, ProgressDocument, parse_progress_document, verify
from tests.support.guarded import within

MARKDOWN = """\
# Progress snapshot
Date: 2026-11-20

Intro prose that mentions nothing measurable.

### 1) Durability
Criteria scoring:
1. Survive restart without semantic drift: 0.55
2. **Idempotent replay**: 0.78 (was 0.70)
3. Outbox delivery: 0.65
4. Snapshot compaction: 1.00
Pillar completion: 75%
Main gaps: 1 flaky suite, and replay of old events.

### 2) Observability (OpenTelemetry-inspired)
Criteria scoring:
- Traces cover every request path: 0.70
- Metrics have owners: .45
Pillar completion: **58%**

#### Evidence
- Dashboards: see the wiki.

### 3) Security
1. Secrets from the environment: 0.89
2. Signed webhooks: 0.94
3. `Token` rotation: 0.90
Pillar completion: 92%

**Overall target architecture completion: 74%**
"""

# The same document as a browser copies it from the rendered page: no "#"
# marks, "2." numbering, list numbers dropped, and navigation and footer lines.
COPIED = """\
Skip to main content
Home
Docs
1. Getting started
2. Architecture
Progress snapshot
Date: 2026-11-20
Intro prose that mentions nothing measurable.

1. Durability
Criteria scoring:
Survive restart without semantic drift: 0.55
Idempotent replay: 0.78 (was 0.70)
Outbox delivery: 0.65
Snapshot compaction: 1.00
Pillar completion: 74%
Main gaps: 1 flaky suite, and replay of old events.
1. Replay of old events
2. A flaky suite

2. Observability (OpenTelemetry-inspired)
Criteria scoring:
Traces cover every request path: 0.70
Metrics have owners: 0.45
Completion: 58%

Pillar 3: Security
Secrets from the environment: 0.89
Signed webhooks: 0.94
Token rotation: 0.90
Pillar completion: 91%

Overall target architecture completion: 74.3%

Was this page helpful?
Version: 1
© 2026 Example Corp. 1) Terms 2) Privacy
"""


def _by_title(figures: list[Figure]) -> dict[str, Figure]:
    return {f.title: f for f in figures}


def test_markdown_document_is_read() -> None:
    doc = parse_progress_document(MARKDOWN)
    assert doc.date == date(2026, 11, 20)
    assert [(p.title, p.line) for p in doc.pillars] == [
        ("Durability", 6),
        ("Observability (OpenTelemetry-inspired)", 15),
        ("Security", 24),
    ]
    durability, observability, security = doc.pillars
    assert [(c.title, c.score, c.line) for c in durability.criteria] == [
        ("Survive restart without semantic drift", 0.55, 8),
        ("Idempotent replay", 0.78, 9),
        ("Outbox delivery", 0.65, 10),
        ("Snapshot compaction", 1.0, 11),
    ]
    assert (durability.claimed, durability.claimed_line, durability.claimed_decimals) == (75.0, 12, 0)
    assert [(c.title, c.score, c.line) for c in observability.criteria] == [
        ("Traces cover every request path", 0.70, 17),
        ("Metrics have owners", 0.45, 18),
    ]
    assert (observability.claimed, observability.claimed_line) == (58.0, 19)
    assert [c.title for c in security.criteria] == ["Secrets from the environment", "Signed webhooks", "Token rotation"]
    assert (security.claimed, security.claimed_line) == (92.0, 28)
    assert (doc.overall_claimed, doc.overall_line, doc.overall_decimals) == (74.0, 30, 0)


def test_markdown_document_is_verified() -> None:
    result = verify(parse_progress_document(MARKDOWN))
    figures = _by_title(result.figures)
    assert [f.what for f in result.figures] == ["pillar", "pillar", "pillar", "overall"]

    durability = figures["Durability"]
    assert durability.computed == pytest.approx(74.5)
    assert (durability.computed_display, durability.agrees, durability.line) == ("75%", True, 12)

    observability = figures["Observability (OpenTelemetry-inspired)"]
    assert observability.computed == pytest.approx(57.5)
    assert (observability.computed_display, observability.agrees) == ("58%", True)

    security = figures["Security"]  # 0.89, 0.94, 0.90 is 91 %, not 92 %
    assert security.computed == pytest.approx(91.0)
    assert (security.computed_display, security.agrees, security.line) == ("91%", False, 28)

    overall = figures["Overall"]  # (74.5 + 57.5 + 91) / 3 = 74.333...
    assert overall.computed == pytest.approx(223 / 3)
    assert (overall.claimed, overall.computed_display, overall.agrees, overall.line) == (74.0, "74%", True, 30)

    assert [f.title for f in result.disagreements] == ["Security"]
    assert result.ok is False
    dumped = result.model_dump(mode="json")
    assert dumped["ok"] is False and [f["title"] for f in dumped["disagreements"]] == ["Security"]


def test_copied_text_is_read() -> None:
    doc = parse_progress_document(COPIED)
    assert doc.date == date(2026, 11, 20)
    assert [(p.title, p.line) for p in doc.pillars] == [
        ("Durability", 10),
        ("Observability (OpenTelemetry-inspired)", 21),
        ("Security", 27),
    ]
    # The navigation list, the numbered "Main gaps" list and the footer's
    # "Version: 1" belong to no pillar.
    assert [len(p.criteria) for p in doc.pillars] == [4, 2, 3]
    assert [c.line for c in doc.pillars[0].criteria] == [12, 13, 14, 15]
    assert [(p.claimed, p.claimed_line) for p in doc.pillars] == [(74.0, 16), (58.0, 25), (91.0, 31)]
    assert (doc.overall_claimed, doc.overall_line, doc.overall_decimals) == (74.3, 33, 1)


def test_copied_text_is_verified() -> None:
    result = verify(parse_progress_document(COPIED))
    figures = _by_title(result.figures)
    assert (figures["Durability"].computed_display, figures["Durability"].agrees) == ("75%", False)
    assert figures["Observability (OpenTelemetry-inspired)"].agrees is True
    assert (figures["Security"].computed_display, figures["Security"].agrees) == ("91%", True)
    # Shown to the claim's one decimal: 74.333... -> 74.3, which is what was claimed.
    assert (figures["Overall"].computed_display, figures["Overall"].agrees) == ("74.3%", True)
    assert [f.title for f in result.disagreements] == ["Durability"]
    assert not result.ok


def _single_pillar(scores: list[str], claimed: str) -> str:
    lines = "\n".join(f"- Criterion {i}: {s}" for i, s in enumerate(scores, 1))
    return f"## 1) Pillar\n{lines}\nPillar completion: {claimed}\n"


@pytest.mark.parametrize(
    ("scores", "claimed", "agrees"),
    [
        (["0.55", "0.78", "0.65", "1.00"], "75%", True),  # 74.5 rounds half up
        (["0.55", "0.78", "0.65", "1.00"], "74%", False),  # not half-even, not truncated
        (["0.55", "0.78", "0.65", "1.00"], "74.5%", True),
        (["0.89", "0.94", "0.90"], "91%", True),
        (["0.89", "0.94", "0.90"], "92%", False),
        (["0.89", "0.94", "0.90"], "91.0%", True),
        (["1", "0.5", "0.5"], "66.7%", True),
        (["1", "0.5", "0.5"], "66.6%", False),
    ],
)
def test_half_up_agreement(scores: list[str], claimed: str, agrees: bool) -> None:
    result = verify(parse_progress_document(_single_pillar(scores, claimed)))
    pillar = result.figures[0]
    assert pillar.agrees is agrees
    assert pillar.line == 2 + len(scores)
    assert result.ok is agrees


def test_overall_uses_unrounded_pillars() -> None:
    # A = 74.5 (shown 75), B = 80.4 (shown 80). From unrounded values the overall
    # is 77.45 -> 77; from the rounded ones it would be 77.5 -> 78.
    text = """\
### 1) A
- a1: 0.55
- a2: 0.78
- a3: 0.65
- a4: 1.00
Pillar completion: 75%
### 2) B
- b1: 0.80
- b2: 0.81
- b3: 0.80
- b4: 0.80
- b5: 0.81
Pillar completion: 80%
Overall completion: {claim}
"""
    good = verify(parse_progress_document(text.format(claim="77%")))
    overall = good.figures[-1]
    assert overall.what == "overall"
    assert overall.computed == pytest.approx(77.45)
    assert (overall.computed_display, overall.agrees) == ("77%", True)
    assert good.ok

    bad = verify(parse_progress_document(text.format(claim="78%")))
    assert [f.what for f in bad.disagreements] == ["overall"]
    assert bad.disagreements[0].computed_display == "77%"


def test_pillars_without_criteria_are_left_out_of_the_overall() -> None:
    text = """\
## 1) Measured
- x: 0.5
Pillar completion: 50%
## 2) Claimed only
Pillar completion: 90%
## 3) Empty heading
Overall completion: 50%
"""
    doc = parse_progress_document(text)
    assert [p.title for p in doc.pillars] == ["Measured", "Claimed only"]
    result = verify(doc)
    figures = _by_title(result.figures)
    assert figures["Overall"].computed == pytest.approx(50.0) and figures["Overall"].agrees is True
    claimed_only = figures["Claimed only"]
    assert (claimed_only.computed, claimed_only.computed_display, claimed_only.agrees) == (None, "–", False)


def test_nothing_claimed_is_neither_agreement_nor_disagreement() -> None:
    result = verify(parse_progress_document("## Claimed\n- z: 1\nCompletion: 100%\n## Pillar\n- a: 0.25\n- b: 0.5\n"))
    _, pillar, overall = result.figures
    assert (pillar.claimed, pillar.agrees, pillar.line) == (None, None, 4)
    assert pillar.computed == pytest.approx(37.5) and pillar.computed_display == "38%"
    assert (overall.claimed, overall.agrees, overall.line) == (None, None, None)
    assert result.ok and result.disagreements == []


def test_prose_and_other_figures_are_not_criteria() -> None:
    text = """\
## 1) Pillar
Open incidents: 3
Main gaps: 1 flaky suite
Coverage: 0.8%
Suites passing: 5/5
Review at: 10:30
- Real criterion: 0.5.
Pillar completion: 50%
"""
    (pillar,) = parse_progress_document(text).pillars
    assert [(c.title, c.score, c.line) for c in pillar.criteria] == [("Real criterion", 0.5, 7)]


def test_date_is_optional_and_must_be_iso() -> None:
    assert parse_progress_document("## P\n- a: 1\nCompletion: 100%\n").date is None
    assert parse_progress_document("Date: 20 November 2026\n## P\n- a: 1\nCompletion: 100%\n").date is None
    assert parse_progress_document("**Date:** 2026-02-03\n## P\n- a: 1\nCompletion: 100%\n").date == date(2026, 2, 3)


def test_windows_line_endings_keep_line_numbers() -> None:
    doc = parse_progress_document("# T\r\n## 1) P\r\n- a: 0.5\r\nPillar completion: 50%\r\n")
    (pillar,) = doc.pillars
    assert (pillar.line, pillar.criteria[0].line, pillar.claimed_line) == (2, 3, 4)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Just some prose.\nNothing: here\nOverall completion: 61%\n",
        "# Notes\n\n- item one\n- item two\n",
        "Pillar completion: 50%\na: 0.5\n",  # scores with no pillar heading above them
    ],
)
def test_nothing_of_the_shape_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="no pillars found"):
        parse_progress_document(text)


def test_sub_headings_belong_to_their_pillar() -> None:
    text = """\
# Snapshot
## Pillars
### 2) Observability
#### Criteria scoring
1. Traces: 0.5
2. Metrics: 1
#### Main gaps
- none
Pillar completion: 75%
### 3) Security
- Secrets: 0.2
Pillar completion: 20%
## Summary
Overall: 47.5%
"""
    doc = parse_progress_document(text)
    assert [(p.title, p.line, len(p.criteria), p.claimed) for p in doc.pillars] == [
        ("Observability", 3, 2, 75.0),
        ("Security", 10, 1, 20.0),
    ]
    result = verify(doc)
    assert result.ok and [f.agrees for f in result.figures] == [True, True, True]
    assert (result.figures[-1].line, result.figures[-1].computed_display) == (14, "47.5%")


def test_lines_of_80000_spaces_parse_in_linear_time() -> None:
    # Each of these shapes cost minutes with backtracking regexes; linear parsing takes milliseconds.
    spaces = " " * 80_000
    text = (f"# Snapshot{spaces}x\n### 1) Durability{spaces}#\nA{spaces}b\n- Restart{spaces}: 0.5{spaces}x\n"
            f"- Replay: 0,70\nPillar completion: 70%\n## {spaces}\nOverall: 70%\n")
    code = f"""if True:
        from daemon.run.progress_doc import parse_progress_document
        print(parse_progress_document({text!r}).model_dump_json())
    """
    doc = ProgressDocument.model_validate(within(20, code))
    (pillar,) = doc.pillars
    assert pillar.title == "Durability"
    assert [(c.title, c.score, c.line) for c in pillar.criteria] == [("Replay", 0.70, 5)]
    assert verify(doc).ok


@pytest.mark.parametrize(("written", "score"), [("0,70", 0.70), ("0,7", 0.7), (",45", 0.45), ("1,0", 1.0)])
def test_a_decimal_comma_is_a_decimal_point_never_zero(written: str, score: float) -> None:
    doc = parse_progress_document(f"## 1) Docs\n- Docs parity: {written}\nPillar completion: 58,5%\n")
    (pillar,) = doc.pillars
    assert [(c.title, c.score) for c in pillar.criteria] == [("Docs parity", score)]
    assert (pillar.claimed, pillar.claimed_decimals) == (58.5, 1)


def test_a_closing_heading_run_is_not_part_of_the_title() -> None:
    doc = parse_progress_document("## 1) Durability ##\n- a: 0.5\nPillar completion: 50%\n## 2) C#\n- b: 1\nPillar completion: 100%\n")
    assert [p.title for p in doc.pillars] == ["Durability", "C#"]


def test_scores_inside_fenced_code_are_not_criteria() -> None:
    text = """\
## 1) Durability
- Survive restart: 0.5
```yaml
retry: 0.2
- timeout: 1
## 2) Not a pillar
Pillar completion: 10%
```
~~~
Overall: 99%
~~~
Pillar completion: 50%
Overall: 50%
"""
    doc = parse_progress_document(text)
    (pillar,) = doc.pillars
    assert (pillar.title, [(c.title, c.score) for c in pillar.criteria]) == ("Durability", [("Survive restart", 0.5)])
    assert (pillar.claimed, pillar.claimed_line, doc.overall_claimed, doc.overall_line) == (50.0, 12, 50.0, 13)


@pytest.mark.parametrize(
    "text",
    [
        "# README\n\n## Settings\n\n- retries: 0.2\n- backoff: 1\n",  # headings and key: value, no claimed figure
        "## 1) Durability\nPillar completion: 50%\n## 2) Security\n- Secrets: 0.5\n",  # claim and scores apart
        "# Config\n```\n## 1) P\n- a: 0.5\nPillar completion: 50%\n```\n",  # only inside fenced code
    ],
)
def test_a_document_without_a_scored_and_claimed_pillar_is_not_a_progress_snapshot(text: str) -> None:
    with pytest.raises(InputError, match="no pillars found") as caught:
        parse_progress_document(text)
    assert "\n" not in str(caught.value) and "claimed" in str(caught.value)
