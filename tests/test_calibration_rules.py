"""The calibration analysis (pure: points in, verdicts out) and the splice of a transform into a configuration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from daemon.config.editing import TransformEdit, flow, set_transforms
from daemon.errors import InputError
from daemon.scoring.calibrate import CheckInfo, CheckValue, CriterionHistory, JudgedPoint, RulePoint, assess

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def history(scores: list[float], judged: list[JudgedPoint] | None = None) -> CriterionHistory:
    """A rule scored `scores` at commits c0, c1, ... a day apart."""
    rules = [RulePoint(commit=f"c{n}", taken_at=T0 + timedelta(days=n), origin="backfilled", score=s)
             for n, s in enumerate(scores)]
    return CriterionHistory(pillar="p", criterion="c", title="C", rules=rules, judged=judged or [])


@pytest.mark.parametrize(("scores", "verdicts"), [
    ([0.0] * 3, ["dead", "unjudged"]),
    ([0.0] * 19 + [0.01], ["unjudged"]),
    ([1.0] * 9 + [0.5], ["saturated", "unjudged"]),  # 90 %: saturated
    ([1.0] * 8 + [0.5] * 2, ["unjudged"]),  # 80 %
    ([0.5] * 19, ["unjudged"]),  # one value, but 19 commits
    ([0.5] * 20, ["constant", "unjudged"]),
    ([1.0] * 20, ["saturated", "constant", "unjudged"]),
    ([], ["no-data"]),
])
def test_verdicts_by_the_thresholds(scores, verdicts):
    assert assess(history(scores)).verdicts == verdicts


def test_a_team_score_without_a_commit_meets_the_last_rule_score_before_it():
    judged = [JudgedPoint(commit=None, taken_at=T0 + timedelta(days=1, hours=12), score=0.5, by="old.md"),
              JudgedPoint(commit="elsewhere", taken_at=T0 + timedelta(days=2, hours=1), score=0.5, by="x.md"),
              JudgedPoint(commit=None, taken_at=T0 - timedelta(days=1), score=0.5, by="older.md")]
    found = assess(history([0.1, 0.3, 0.9], judged))
    assert [(p.commit, p.rule) for p in found.agreement.pairs] == [("c1", 0.3), ("c2", 0.9)]
    assert found.agreement.not_compared == 1
    assert found.agreement.mean_error == pytest.approx(0.3) and found.agreement.worst_commit == "c2"
    assert found.verdicts == ["disagrees"]


def test_the_tolerance_decides_agreement():
    judged = [JudgedPoint(commit="c0", taken_at=T0, score=0.6, by="d.md")]
    assert assess(history([0.5], judged), tolerance=0.1).verdicts == ["agrees"]
    assert assess(history([0.5], judged), tolerance=0.05).verdicts == ["disagrees"]


def _rules(points: list[tuple[float, list[CheckValue]]]) -> list[RulePoint]:
    return [RulePoint(commit=f"c{n}", taken_at=T0 + timedelta(days=n), origin="backfilled", score=s, checks=checks)
            for n, (s, checks) in enumerate(points)]


def test_a_scale_is_fitted_to_one_check_of_a_mean_the_others_held():
    """A file exists (1.0) and a count on scale [0, 10] saturates; the team says 0.75 at 10 and 1.0 at 20:
    the count needs 0.5 and 1.0 there, so scale [0, 20]."""
    rules = _rules([(1.0, [CheckValue(value=True, score=1.0), CheckValue(value=10, score=1.0)]),
                    (1.0, [CheckValue(value=True, score=1.0), CheckValue(value=20, score=1.0)])])
    judged = [JudgedPoint(commit="c0", taken_at=T0, score=0.75, by="d.md"),
              JudgedPoint(commit="c1", taken_at=T0 + timedelta(days=1), score=1.0, by="d.md")]
    found = assess(CriterionHistory(
        pillar="p", criterion="c", title="C", combine="mean",
        checks=[CheckInfo(what="repo: file_exists(path=x).exists", transform="bool"),
                CheckInfo(what="repo: file_count(glob=t/*).count", transform={"scale": [0, 10]})],
        rules=rules, judged=judged), tolerance=0.1)
    assert found.verdicts == ["saturated", "disagrees"]
    s = found.suggestion
    assert s is not None and (s.check, s.transform) == (1, {"scale": [0.0, 20.0]})
    assert (s.mean_error_before, s.mean_error_after) == (pytest.approx(0.125), 0.0)
    assert s.words == "scale [0, 20] on repo: file_count(glob=t/*).count: mean error 0.12 → 0.00 over 2 judged commits"


def test_nothing_is_fitted_to_a_yes_or_no():
    rules = _rules([(1.0, [CheckValue(value=True, score=1.0)]), (1.0, [CheckValue(value=True, score=1.0)])])
    judged = [JudgedPoint(commit="c0", taken_at=T0, score=0.2, by="d.md")]
    found = assess(CriterionHistory(pillar="p", criterion="c", title="C", rules=rules, judged=judged,
                                    checks=[CheckInfo(what="x", transform="bool")]))
    assert found.verdicts == ["saturated", "disagrees"] and found.suggestion is None


# --- the splice ------------------------------------------------------------------------

TEXT = """\
# top comment
templates:
  pillars:
    shared:
      id: shared
      title: Shared
      criteria:
        - id: t
          title: T
          checks:
            - {source: r, signal: file_count, glob: 'a/*'}   # no transform yet
projects:
  - id: p
    sources: [{id: r, kind: git, path: .}]
    pillars:
      - template: shared
      - id: own
        title: Own
        criteria:
          - id: block
            title: Block
            checks:
              - source: r
                signal: file_count  # counted
                glob: 'b/*'
          - id: thresholds
            title: Thresholds
            checks:
              - source: r
                signal: file_count
                transform: {thresholds: [[1, 0.5], [3, 1.0]]}
"""


def test_only_the_transforms_change_and_everything_else_stays():
    edits = [TransformEdit("p", "shared", "t", 0, {"scale": [0.0, 12.5]}),
             TransformEdit("p", "own", "block", 0, {"scale": [-1.5, 20.0]}),
             TransformEdit("p", "own", "thresholds", 0, {"scale": [0.0, 4.0]})]
    after = set_transforms(TEXT, edits)
    assert after == (TEXT
                     .replace("glob: 'a/*'}", "glob: 'a/*', transform: {scale: [0, 12.5]}}")
                     .replace("                glob: 'b/*'\n", "                glob: 'b/*'\n                transform: {scale: [-1.5, 20]}\n")
                     .replace("{thresholds: [[1, 0.5], [3, 1.0]]}", "{scale: [0, 4]}"))
    data = yaml.safe_load(after)
    assert data["templates"]["pillars"]["shared"]["criteria"][0]["checks"][0]["transform"] == {"scale": [0, 12.5]}


def test_a_check_that_is_not_there_is_a_one_line_error():
    with pytest.raises(InputError, match=r"pw.yaml: cannot find check 2 of p/own/block in the file"):
        set_transforms(TEXT, [TransformEdit("p", "own", "block", 1, {"scale": [0, 1]})], where="pw.yaml")


def test_flow_writes_what_a_person_would():
    assert flow({"scale": [0.0, 12.5]}) == "{scale: [0, 12.5]}"
