"""User regexes run on RE2: a catastrophic pattern cannot hang a collection, and
syntax RE2 lacks is a one-line configuration error."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from collectors import command, docs, git, junit
from collectors.regex import compile_regex
from tests.support.cli import run_cli
from tests.support.git import GitRepo

# 2^40 backtracking steps on a backtracking engine; a few microseconds on RE2.
CATASTROPHIC = "(a+)+$"
EVIL_LINE = "a" * 40 + "b"
# A guard, not a timing assertion: a hang fails the test instead of freezing the suite.
GUARD_SECONDS = 90

CONFIG = """\
version: 1
store: pw.db
allow_commands: true
projects:
  - id: svc
    title: Service
    sources:
      - {id: repo, kind: git, path: repo}
      - {id: status, kind: doc, git: repo, path: STATUS.md}
      - {id: reports, kind: junit, git: repo, glob: "reports/*.xml"}
      - {id: cmd, kind: command, argv: [cat, repo/evil.txt]}
    pillars:
      - id: p
        title: Pillar
        criteria:
          - id: code
            title: Code
            checks:
              - {source: repo, signal: content_match, glob: "*.txt", regex: "%(regex)s"}
          - id: doc
            title: Doc
            checks:
              - {source: status, signal: mentions, regex: "%(regex)s"}
          - id: tests
            title: Tests
            checks:
              - {source: reports, signal: tests, name: "%(regex)s"}
          - id: number
            title: Number
            checks:
              - {source: cmd, signal: stdout_number, regex: "%(regex)s", transform: {scale: [0, 1]}}
          - id: cases
            title: Test cases
            checks:
              - {source: repo, signal: test_cases, match: "%(regex)s"}
"""


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "repo")
    repo.write("evil.txt", f"{EVIL_LINE}\naaaa\n")  # the second line matches
    repo.write("STATUS.md", f"# Status\n\n{EVIL_LINE}\naaaa\n")
    repo.write("reports/r.xml", f'<testsuite name="s"><testcase classname="c" name="{EVIL_LINE}"/>'
                                '<testcase classname="c" name="aaaa"/></testsuite>')
    repo.write("test_evil.py", f"def test_{EVIL_LINE}():\n    pass\n\n\ndef test_aaaa():\n    pass\n")
    repo.commit("evil", when=datetime(2026, 11, 1, tzinfo=timezone.utc))
    (tmp_path / "pw.yaml").write_text(CONFIG % {"regex": CATASTROPHIC})
    return tmp_path


def test_a_catastrophic_regex_does_not_hang_collect_and_still_matches(evil):
    proc = run_cli("collect", "--config", "pw.yaml", cwd=evil, code=None, timeout=GUARD_SECONDS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snap = json.loads(run_cli("status", "--config", "pw.yaml", "--json", cwd=evil, code=None, timeout=GUARD_SECONDS).stdout)
    evidence = {c["id"]: c["evidence"][0] for c in snap["pillars"][0]["criteria"]}
    assert evidence["code"]["value"]["matches"] == 1
    assert evidence["doc"]["value"]["count"] == 1
    assert evidence["tests"]["value"]["tests"] == 1  # only "aaaa" ends in a's
    assert evidence["cases"]["value"]["names"] == ["test_evil.py::test_aaaa"]
    # stdout_number of "aaaa" is not a number: malformed, but answered without hanging.
    assert evidence["number"]["error"]["kind"] == "malformed"


@pytest.mark.parametrize(("pattern", "what"), [("(?=x)", "lookaround"), (r"(a)\1", "backreference"),
                                               ("(?<!x)y", "lookaround")])
def test_check_names_syntax_re2_lacks_in_one_line(evil, pattern, what):
    (evil / "pw.yaml").write_text(CONFIG.replace('regex: "%(regex)s"}\n          - id: doc', f"regex: '{pattern}'}}\n          - id: doc", 1)
                                  .replace("%(regex)s", "x"))
    proc = run_cli("check", "--config", "pw.yaml", cwd=evil, code=None, timeout=GUARD_SECONDS)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pw.yaml:19: projects[0].pillars[0].criteria[0].checks[0].regex: "), lines[0]
    assert "RE2" in lines[0] and repr(pattern) in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("model", [
    lambda rx: git.ContentMatch(glob="**", regex=rx),
    lambda rx: docs.Mentions(regex=rx),
    lambda rx: junit.Tests(name=rx),
    lambda rx: junit.Tests(suite=rx),
    lambda rx: command.StdoutNumber(regex=rx),
    lambda rx: git.TestCases(match=rx),
], ids=["content_match", "mentions", "junit-name", "junit-suite", "stdout_number", "test_cases"])
def test_every_regex_parameter_is_validated_as_re2(model):
    model("a+b")
    with pytest.raises(ValidationError, match="RE2"):
        model("(?=x)")
    with pytest.raises(ValidationError, match="invalid regex"):
        model("a(b")


def test_the_wrapper_keeps_python_meaning_for_common_patterns():
    assert compile_regex(r"^TODO \w+$", multiline=True).search("x\nTODO fix\ny")
    assert not compile_regex(r"^TODO", multiline=False).search("x\nTODO")
    found = [m.start() for m in compile_regex("é+", multiline=True).finditer("aéé bé")]
    assert found == [1, 5]  # character offsets, not bytes
