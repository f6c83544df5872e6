"""File names as git keeps them: bytes. Names that are not UTF-8 are kept, quoted
the way git quotes them; control characters never reach a terminal raw."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collectors.evidence import EvidenceRequest, path_from_text, path_text
from collectors.git import GitSource, collect
from tests.support.cli import run_cli
from tests.support.git import GitRepo

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
LATIN1 = "caf\udce9.txt"  # b"caf\xe9.txt" as a POSIX file name: "café" in Latin-1, not UTF-8
QUOTED = '"caf\\351.txt"'  # as `git ls-files` shows it

CONFIG = """\
version: 1
store: pw.db
projects:
  - id: svc
    title: Service
    sources:
      - {id: repo, kind: git, path: repo}
      - {id: reports, kind: junit, git: repo, glob: "reports/*.xml"}
    pillars:
      - id: p
        title: Pillar
        criteria:
          - id: todo
            title: TODOs
            checks:
              - {source: repo, signal: content_match, glob: "**/*.txt", regex: "TODO"}
          - id: files
            title: Files
            checks:
              - {source: repo, signal: file_count, glob: "**/*.txt"}
          - id: tests
            title: Tests
            checks:
              - {source: reports, signal: tests}
"""


@pytest.mark.parametrize(("name", "shown"), [
    ("plain.txt", "plain.txt"),
    ("é.txt", "é.txt"),  # valid UTF-8 stays as it is
    (LATIN1, QUOTED),
    ("caf\udce9 \"q\"\\.txt", '"caf\\351 \\"q\\"\\\\.txt"'),
    ("\udcff\udcfe\tx", '"\\377\\376\\tx"'),
    ('"starts-with-quote', '"\\"starts-with-quote"'),  # so that a shown name is never ambiguous
])
def test_path_text_quotes_like_git(name, shown):
    assert path_text(name) == shown


@pytest.mark.parametrize("name", [LATIN1, "plain.txt", "é.txt", "caf\udce9 \"q\"\\.txt", "\udcff\udcfe\tx", '"q'])
def test_the_quoting_is_lossless(name):
    assert path_from_text(path_text(name)) == name


def test_a_quoted_name_in_a_path_parameter_names_the_file(git_repo: GitRepo, tmp_path: Path):
    git_repo.write(LATIN1, "TODO\n")
    git_repo.commit("c", when=NOW)
    requests = [EvidenceRequest(signal="file_exists", params={"path": QUOTED}),
                EvidenceRequest(signal="file_age", params={"path": QUOTED}),
                EvidenceRequest(signal="commits_since", params={"path": QUOTED, "days": 30})]
    result = collect(GitSource(id="r", path=str(git_repo.path)), requests, now=NOW, cache_dir=tmp_path / "cache")
    exists, age, since = result.evidence
    assert exists.value["exists"] is True and exists.provenance.path == QUOTED
    assert age.value["exists"] is True and age.value["days"] == 0 and age.provenance.path == QUOTED
    assert since.value["count"] == 1 and since.provenance.path == QUOTED


def test_a_latin1_file_name_is_kept_and_the_project_gets_a_snapshot(tmp_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write(LATIN1, "TODO\n")
    repo.write("ok.txt", "nothing\n")
    repo.write("reports/r\udce9sultats.xml", '<testsuite name="s"><testcase classname="c" name="t"/></testsuite>')
    repo.commit("latin-1 names", when=NOW)
    assert repo.git("ls-files", "caf*") == QUOTED  # git's own quoting, which we keep
    (tmp_path / "pw.yaml").write_text(CONFIG)
    run_cli("collect", "--config", "pw.yaml", cwd=tmp_path)
    snap = json.loads(run_cli("status", "--config", "pw.yaml", "--json", cwd=tmp_path).stdout)
    assert snap["complete"] is True
    evidence = {c["id"]: c["evidence"][0] for c in snap["pillars"][0]["criteria"]}
    assert evidence["todo"]["value"]["paths"] == [QUOTED]
    assert evidence["todo"]["provenance"]["path"] == QUOTED
    assert evidence["files"]["value"]["paths"] == [QUOTED, "ok.txt"]
    assert evidence["tests"]["value"]["tests"] == 1
    assert evidence["tests"]["provenance"]["path"] == '"reports/r\\351sultats.xml"'


def test_collect_serialises_every_answer_about_a_latin1_name(git_repo: GitRepo, tmp_path: Path):
    git_repo.write(LATIN1, "TODO\n")
    git_repo.commit("c", when=NOW)
    requests = [EvidenceRequest(signal="file_exists", params={"glob": "*.txt"}),
                EvidenceRequest(signal="content_match", params={"glob": "*", "regex": "TODO"})]
    result = collect(GitSource(id="r", path=str(git_repo.path)), requests, now=NOW, cache_dir=tmp_path / "cache")
    assert [e.value["paths"] for e in result.evidence] == [[QUOTED], [QUOTED]]
    assert json.dumps(QUOTED) in result.model_dump_json()


# --- terminal output ------------------------------------------------------------------------

EVIL = {"red": "red\x1b[31mALERT.txt", "cr": "cr\rname.txt", "nl": "nl\nline.txt", "markup": "markup[red]x[blink].txt"}

TERMINAL_CONFIG = """\
version: 1
store: pw.db
projects:
  - id: svc
    title: Service
    sources:
      - {id: repo, kind: git, path: repo}
    pillars:
      - id: p
        title: "P\\e[31mred\\rX"
        criteria:
""" + "".join(f"""\
          - id: {key}
            title: Match {key}
            checks:
              - {{source: repo, signal: content_match, glob: "{key}*", regex: "TODO"}}
""" for key in EVIL)


def _terminal(*args: str, cwd: Path) -> str:
    """What a command prints to a (wide) terminal, as bytes decoded: every control character shows."""
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, capture_output=True, timeout=120,
                          env={**__import__("os").environ, "COLUMNS": "400"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.decode()


def _raw_control(text: str) -> list[str]:
    return sorted({ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) < 0xA0})


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "repo")
    for name in EVIL.values():
        repo.write(name, "TODO\n")
    repo.commit("evil names", when=NOW)
    (tmp_path / "pw.yaml").write_text(TERMINAL_CONFIG)
    _terminal("collect", "--config", "pw.yaml", cwd=tmp_path)
    for name in EVIL.values():
        repo.write(name, "done\n")
    repo.commit("fixed", when=NOW)
    return tmp_path


def test_explain_escapes_control_characters_in_file_names(evil):
    for key, name in EVIL.items():
        out = _terminal("explain", key, "--config", "pw.yaml", cwd=evil)
        assert _raw_control(out) == [], out
        assert name.encode("unicode_escape").decode() in out  # shown, escaped: red\x1b[31mALERT.txt
        assert "nl\nline" not in out
        exact = json.loads(_terminal("explain", key, "--config", "pw.yaml", "--json", cwd=evil))
        (evidence,) = exact["evidence"]
        assert evidence["provenance"]["path"] == name  # --json stays exact


def test_every_terminal_output_escapes_control_characters(evil):
    outputs = {"collect": _terminal("collect", "--config", "pw.yaml", cwd=evil)}
    for command in (["status"], ["history"], ["diff"], ["report"], ["alerts"]):
        outputs[command[0]] = _terminal(*command, "--config", "pw.yaml", cwd=evil)
    for command, out in outputs.items():
        assert _raw_control(out) == [], (command, out)
    for command in ("collect", "status", "history", "diff", "report"):
        assert "P\\x1b[31mred\\rX" in outputs[command], (command, outputs[command])
    assert json.loads(_terminal("status", "--config", "pw.yaml", "--json", cwd=evil))["pillars"][0]["title"] == \
        "P\x1b[31mred\rX"
