"""The git collector against real repositories built with the git CLI."""

from __future__ import annotations

import hashlib
import shutil
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from collectors.evidence import CollectResult, Evidence, EvidenceRequest, SourceFault
from collectors.git import (
    SIGNALS,
    CommitsSince,
    ContentMatch,
    FileAge,
    FileCount,
    FileExists,
    GitSource,
    Head,
    TestCases,
    collect,
    read_text,
)
from tests.support.git import GitRepo

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=timezone.utc)
C1 = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
C2 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
C3 = NOW - timedelta(days=10)  # exactly on the edge of a 10-day window
C4 = datetime(2024, 6, 25, 12, 0, tzinfo=timezone.utc)
FEATURE = datetime(2024, 6, 28, 12, 0, tzinfo=timezone.utc)
MAX_BYTES = 2000


class Fixture:
    def __init__(self, repo: GitRepo, shas: dict[str, str], outside: Path):
        self.repo, self.shas, self.outside = repo, shas, outside

    def source(self, **kw: object) -> GitSource:
        return GitSource(id="svc", path=str(self.repo.path), max_file_bytes=MAX_BYTES, **kw)


@pytest.fixture
def fx(git_repo: GitRepo, tmp_path: Path) -> Fixture:
    # A file outside the repository full of TODOs: reading it through a link would show.
    outside = tmp_path / "outside.txt"
    outside.write_text("TODO\n" * 50)
    r = git_repo
    r.write("README.md", "# Service\n")
    r.write("src/app.py", "# TODO one\nprint('hi')  # TODO two\n")
    r.write("docs/old.md", "old\n")
    r.write("docs/guide.md", "guide\n")
    r.write(".github/workflows/ci.yml", "on: push\n")
    c1 = r.commit("c1", when=C1)
    r.remove("docs/old.md")
    r.rename("docs/guide.md", "docs/manual.md")
    r.write("assets/logo.bin", b"\x89PNG\x00\x01TODO TODO\n")
    r.write("big.txt", "TODO\n" * 1000)  # 5000 bytes > MAX_BYTES
    r.symlink("link_out", "../outside.txt")  # relative, escapes the repository root
    r.symlink("sub/etc_link", "/etc/passwd")  # absolute
    r.symlink("link_in", "src/app.py")
    r.symlink("sub/link_chain", "../link_in")  # in-tree link to an in-tree link
    r.symlink("broken_link", "missing.txt")
    c2 = r.commit("c2", when=C2)
    r.write("src/app.py", "# TODO one\nprint('hi')  # TODO two\nTODO three\n")
    c3 = r.commit("c3", when=C3)
    r.write("README.md", "# Service\n\nReady.\n")
    c4 = r.commit("c4", when=C4)
    r.git("checkout", "-q", "-b", "feature")
    r.write("feature.txt", "feature\n")
    feature = r.commit("feature", when=FEATURE)
    r.git("checkout", "-q", "main")
    # Working-tree changes that must stay invisible: evidence comes from commits.
    r.write("untracked.txt", "TODO\n")
    r.write("README.md", "TODO TODO TODO\n")
    return Fixture(r, {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "feature": feature}, outside)


def run(source: GitSource, cache: Path, *requests: tuple[str, dict], now: datetime = NOW) -> CollectResult:
    reqs = [EvidenceRequest(signal=s, params=p) for s, p in requests]
    return collect(source, reqs, now=now, cache_dir=cache)


def one(source: GitSource, cache: Path, signal: str, now: datetime = NOW, **params: object) -> Evidence:
    result = run(source, cache, (signal, params), now=now)
    assert result.error is None, result.error
    (item,) = result.evidence
    assert item.signal == signal and item.params == params
    return item


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# -- signals ---------------------------------------------------------------


def test_signal_registry_and_defaults() -> None:
    assert {
        "file_exists": FileExists, "file_count": FileCount, "content_match": ContentMatch, "test_cases": TestCases,
        "file_age": FileAge, "commits_since": CommitsSince, "head": Head,
    } == SIGNALS
    assert (TestCases.default_field, TestCases.default_transform) == ("count", "bool")
    assert (FileExists.default_field, FileExists.default_transform) == ("exists", "bool")
    assert (FileCount.default_field, FileCount.default_transform) == ("count", "bool")
    assert (ContentMatch.default_field, ContentMatch.default_transform) == ("matches", "bool")
    assert (FileAge.default_field, FileAge.default_transform) == ("days", None)
    assert (CommitsSince.default_field, CommitsSince.default_transform) == ("count", "bool")
    assert (Head.default_field, Head.default_transform) == ("age_days", None)


def test_file_exists_by_path(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    result = run(src, cache, ("file_exists", {"path": "README.md"}), ("file_exists", {"path": "docs/old.md"}),
                 ("file_exists", {"path": "./docs/manual.md"}))
    assert result.fingerprint == fx.shas["c4"]
    present, deleted, renamed = result.evidence
    assert present.value == {"exists": True, "count": 1, "paths": ["README.md"]}
    assert present.provenance.commit == fx.shas["c4"] and present.provenance.path == "README.md"
    assert deleted.value == {"exists": False, "count": 0, "paths": []}
    assert deleted.provenance.path == "docs/old.md"
    # Params are echoed as given, not as normalised.
    assert renamed.params == {"path": "./docs/manual.md"} and renamed.value["exists"] is True


def test_file_exists_by_glob_sees_dotfiles_and_ignores_outside_links(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    yml = one(src, cache, "file_exists", glob="**/*.yml")
    assert yml.value == {"exists": True, "count": 1, "paths": [".github/workflows/ci.yml"]}
    assert yml.provenance == yml.provenance.model_copy(update={"commit": fx.shas["c4"],
                                                                "path": ".github/workflows/ci.yml"})
    links = one(src, cache, "file_exists", glob="**/*link*")
    # In-tree links (even a dangling one) are files; links leaving the repository are not.
    assert links.value["paths"] == ["broken_link", "link_in", "sub/link_chain"]
    assert one(src, cache, "file_exists", path="link_out").value["exists"] is False
    assert one(src, cache, "file_exists", glob="*.nothing").value == {"exists": False, "count": 0, "paths": []}


def test_file_count(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    docs = one(src, cache, "file_count", glob="docs/*.md")
    assert docs.value == {"count": 1, "paths": ["docs/manual.md"]}
    assert docs.provenance.commit == fx.shas["c4"]
    everything = one(src, cache, "file_count", glob="**")
    assert everything.value["count"] == 9  # binary and too-large files count; outside links do not
    assert "assets/logo.bin" in everything.value["paths"] and "big.txt" in everything.value["paths"]
    assert "untracked.txt" not in everything.value["paths"]
    braces = one(src, cache, "file_count", glob="{README.md,src/*.py}")
    assert braces.value == {"count": 2, "paths": ["README.md", "src/app.py"]}


def test_file_lists_are_capped_at_twenty(git_repo: GitRepo, cache: Path) -> None:
    for i in range(25):
        git_repo.write(f"many/f{i:02}.txt", "x")
    git_repo.commit("many", when=C1)
    item = one(GitSource(id="m", path=str(git_repo.path)), cache, "file_count", glob="many/*.txt")
    assert item.value["count"] == 25
    assert item.value["paths"] == [f"many/f{i:02}.txt" for i in range(20)]


def test_content_match_counts_and_skips(fx: Fixture, cache: Path) -> None:
    item = one(fx.source(), cache, "content_match", glob="**", regex="TODO")
    assert item.value["files"] == 3  # src/app.py, and the two in-tree links leading to it
    assert item.value["matches"] == 9
    assert item.value["paths"] == ["link_in", "src/app.py", "sub/link_chain"]
    assert sorted((s["path"], s["reason"]) for s in item.value["skipped"]) == [
        ("assets/logo.bin", "binary"),
        ("big.txt", "too_large"),
        ("broken_link", "symlink_broken"),
        ("link_out", "symlink_outside"),
        ("sub/etc_link", "symlink_outside"),
    ]
    assert item.provenance.commit == fx.shas["c4"] and item.provenance.path == "link_in"


def test_content_match_multiline_and_no_match(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    anchored = one(src, cache, "content_match", glob="src/*.py", regex=r"^TODO \w+$")
    assert (anchored.value["files"], anchored.value["matches"]) == (1, 1)
    none = one(src, cache, "content_match", glob="README.md", regex="TODO")
    # The working tree's README is full of TODOs; the committed one has none.
    assert none.value == {"files": 0, "matches": 0, "paths": [], "skipped": []}
    assert none.provenance.path is None


def test_file_age(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    readme = one(src, cache, "file_age", path="README.md")
    assert readme.value == {"exists": True, "days": 5.0, "last_commit": fx.shas["c4"]}
    assert readme.provenance.commit == fx.shas["c4"] and readme.provenance.path == "README.md"
    renamed = one(src, cache, "file_age", path="docs/manual.md")
    assert renamed.value == {"exists": True, "days": (NOW - C2).days, "last_commit": fx.shas["c2"]}
    deleted = one(src, cache, "file_age", path="docs/old.md")
    assert deleted.value == {"exists": False, "days": (NOW - C2).days, "last_commit": fx.shas["c2"]}
    never = one(src, cache, "file_age", path="never.txt")
    assert never.value == {"exists": False, "days": None, "last_commit": None}
    later = one(src, cache, "file_age", path="README.md", now=NOW + timedelta(hours=12))
    assert later.value["days"] == 5.5


def test_commits_since_window(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    assert one(src, cache, "commits_since", days=10).value == {"count": 1}  # c3 sits on the open edge
    assert one(src, cache, "commits_since", days=10.0001).value == {"count": 2}
    assert one(src, cache, "commits_since", days=365).value == {"count": 4}
    # The window ends at `now`: commits after it are not counted.
    earlier = NOW - timedelta(days=5, hours=1)  # before c4
    assert one(src, cache, "commits_since", days=30, now=earlier).value == {"count": 1}
    with_path = one(src, cache, "commits_since", days=365, path="src/app.py")
    assert with_path.value == {"count": 2} and with_path.provenance.path == "src/app.py"
    assert with_path.provenance.commit == fx.shas["c4"]
    assert one(src, cache, "commits_since", days=10.0001, path="README.md").value == {"count": 1}
    assert one(src, cache, "commits_since", days=365, path="docs/old.md").value == {"count": 2}


def test_head(fx: Fixture, cache: Path) -> None:
    item = one(fx.source(), cache, "head")
    assert item.value == {"sha": fx.shas["c4"], "committed_at": "2024-06-25T12:00:00Z", "age_days": 5.0}
    assert item.provenance.commit == fx.shas["c4"]


def test_non_default_branch(fx: Fixture, cache: Path) -> None:
    src = fx.source(branch="feature")
    result = run(src, cache, ("head", {}), ("file_exists", {"path": "feature.txt"}))
    assert result.fingerprint == fx.shas["feature"]
    head, feature = result.evidence
    assert head.value["sha"] == fx.shas["feature"] and head.value["age_days"] == 2.0
    assert feature.value["exists"] is True and feature.provenance.commit == fx.shas["feature"]
    assert one(fx.source(), cache, "file_exists", path="feature.txt").value["exists"] is False
    tag = fx.source(branch=fx.shas["c1"])
    assert run(tag, cache, ("head", {})).fingerprint == fx.shas["c1"]


def test_working_tree_is_never_read(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    assert one(src, cache, "file_exists", path="untracked.txt").value["exists"] is False
    assert read_text(src, "README.md", cache_dir=cache) == ("# Service\n\nReady.\n", fx.shas["c4"])


def test_bare_repository_path(fx: Fixture, tmp_path: Path, cache: Path) -> None:
    bare = tmp_path / "bare.git"
    fx.repo.git("clone", "-q", "--bare", str(fx.repo.path), str(bare))
    item = one(GitSource(id="b", path=str(bare)), cache, "file_exists", path="docs/manual.md")
    assert item.value["exists"] is True and item.provenance.commit == fx.shas["c4"]


# -- bad params --------------------------------------------------------------


def test_invalid_params_fail_only_their_item(fx: Fixture, cache: Path) -> None:
    result = run(
        fx.source(), cache,
        ("content_match", {"glob": "**", "regex": "("}),
        ("no_such_signal", {}),
        ("file_exists", {"path": "a", "glob": "b"}),
        ("file_exists", {"path": "README.md", "extra": 1}),
        ("commits_since", {"days": 0}),
        ("file_age", {"path": "../outside.txt"}),
        ("head", {}),
    )
    assert result.error is None and result.fingerprint == fx.shas["c4"]
    regex, unknown, both, extra, zero, escape, head = result.evidence
    assert regex.error.kind == "malformed" and "invalid regex '('" in regex.error.message
    assert unknown.error.kind == "unsupported" and "no_such_signal" in unknown.error.message
    assert unknown.params == {}
    for item in (both, extra, zero, escape):
        assert item.error is not None and item.error.kind == "malformed", item
        assert "\n" not in item.error.message and item.value is None
    assert head.ok and head.value["sha"] == fx.shas["c4"]
    with pytest.raises(ValidationError, match="invalid regex"):
        ContentMatch(glob="**", regex="[")


# -- repository faults -------------------------------------------------------


def test_missing_repository(tmp_path: Path, cache: Path) -> None:
    missing = tmp_path / "nope"
    result = run(GitSource(id="x", path=str(missing)), cache, ("head", {}), ("file_exists", {"path": "a"}))
    assert result.error.kind == "not_found"
    assert result.error.message == f"repository not found: {missing}"
    assert [e.error for e in result.evidence] == [result.error, result.error]
    assert result.fingerprint is None


def test_folder_that_is_not_a_repository(tmp_path: Path, cache: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = run(GitSource(id="x", path=str(plain)), cache, ("head", {}))
    assert result.error.kind == "malformed" and result.error.message == f"not a git repository: {plain}"
    broken = tmp_path / "broken"
    (broken / ".git").mkdir(parents=True)
    (broken / ".git" / "HEAD").write_text("garbage\n")
    assert run(GitSource(id="x", path=str(broken)), cache, ("head", {})).error.kind == "malformed"


def test_truncated_objects(fx: Fixture, tmp_path: Path, cache: Path) -> None:
    copy = tmp_path / "corrupt"
    shutil.copytree(fx.repo.path, copy, symlinks=True)
    for obj in (copy / ".git" / "objects").glob("??/*"):
        obj.chmod(0o644)
        obj.write_bytes(obj.read_bytes()[:8])
    result = run(GitSource(id="x", path=str(copy)), cache, ("head", {}), ("file_count", {"glob": "**"}))
    assert result.error.kind == "malformed" and str(copy) in result.error.message
    assert "\n" not in result.error.message
    assert all(e.error == result.error for e in result.evidence)


def test_corrupt_blob_fails_the_source(git_repo: GitRepo, cache: Path) -> None:
    git_repo.write("a.txt", "TODO\n")
    git_repo.commit("a", when=C1)
    blob = git_repo.git("rev-parse", "HEAD:a.txt")
    loose = git_repo.path / ".git" / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(loose.read_bytes()[:8])
    src = GitSource(id="x", path=str(git_repo.path))
    result = run(src, cache, ("content_match", {"glob": "**", "regex": "TODO"}))
    assert result.error.kind == "malformed" and "a.txt" in result.error.message
    with pytest.raises(SourceFault) as info:
        read_text(src, "a.txt", cache_dir=cache)
    assert info.value.error.kind == "malformed"


def test_unknown_branch(fx: Fixture, cache: Path) -> None:
    result = run(fx.source(branch="nope"), cache, ("head", {}))
    assert result.error.kind == "not_found"
    assert result.error.message == f"branch 'nope' not found in {fx.repo.path}"
    option = run(fx.source(branch="--output=/tmp/x"), cache, ("head", {}))
    assert option.error.kind == "not_found"


def test_a_ref_read_from_its_file_resolves_as_git_would(git_repo: GitRepo, cache: Path) -> None:
    # A branch, an annotated tag (peeled to its commit) and a ref to a missing commit, read without rev-parse.
    git_repo.write("a.txt", "a\n")
    sha = git_repo.commit("a", when=C1)
    git_repo.git("tag", "-a", "v1", "-m", "release")
    (git_repo.path / ".git" / "refs" / "heads" / "broken").write_text("1" * 40 + "\n")
    src = GitSource(id="x", path=str(git_repo.path))
    assert one(src.model_copy(update={"branch": "main"}), cache, "head").value["sha"] == sha
    assert one(src.model_copy(update={"branch": "v1"}), cache, "head").value["sha"] == sha
    broken = run(src.model_copy(update={"branch": "broken"}), cache, ("head", {}))
    assert broken.error.kind == "malformed" and f"bad object {'1' * 40}" in broken.error.message


def test_empty_repository_has_no_head(git_repo: GitRepo, cache: Path) -> None:
    result = run(GitSource(id="x", path=str(git_repo.path)), cache, ("head", {}))
    assert result.error.kind == "not_found" and "branch 'HEAD'" in result.error.message


# -- remote mirrors ------------------------------------------------------------


def test_url_source_is_mirrored_and_fetched(fx: Fixture, cache: Path) -> None:
    url = fx.repo.path.as_uri()
    src = GitSource(id="remote", url=url)
    first = run(src, cache, ("head", {}), ("file_exists", {"path": "late.txt"}))
    assert first.error is None and first.fingerprint == fx.shas["c4"]
    mirror = cache / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git")
    assert [p.name for p in cache.iterdir()] == [mirror.name]
    assert (mirror / "HEAD").is_file() and not (mirror / "README.md").exists()  # bare, no checkout
    assert first.evidence[1].value["exists"] is False

    fx.repo.write("late.txt", "late\n")
    late = fx.repo.commit("late", when=NOW)
    second = run(src, cache, ("head", {}), ("file_exists", {"path": "late.txt"}))
    assert second.fingerprint == late
    assert second.evidence[1].value["exists"] is True and second.evidence[1].provenance.commit == late
    feature = run(GitSource(id="r", url=url, branch="feature"), cache, ("head", {}))
    assert feature.fingerprint == fx.shas["feature"]


def test_read_text_fetches_an_unseen_commit(fx: Fixture, cache: Path) -> None:
    src = GitSource(id="remote", url=fx.repo.path.as_uri())
    assert run(src, cache, ("head", {})).fingerprint == fx.shas["c4"]
    fx.repo.write("late.txt", "late\n")
    late = fx.repo.commit("late", when=NOW)
    assert read_text(src, "late.txt", cache_dir=cache, commit=late) == ("late\n", late)


def test_unreachable_url_hides_credentials(tmp_path: Path, cache: Path) -> None:
    gone = run(GitSource(id="x", url=(tmp_path / "gone").as_uri()), cache, ("head", {}))
    assert gone.error.kind == "unreachable" and gone.error.retryable is True
    assert "\n" not in gone.error.message and "gone" in gone.error.message
    src = GitSource(id="x", url="https://alice:s3cret@127.0.0.1:1/repo.git", timeout_seconds=30)
    result = run(src, cache, ("head", {}))
    assert result.error.kind == "unreachable" and result.error.retryable is True
    assert "s3cret" not in result.error.message and "alice" not in result.error.message
    assert "127.0.0.1" in result.error.message
    assert not any(cache.iterdir())  # a failed clone leaves nothing behind


UNSAFE = [
    "ext::sh -c touch% /tmp/pwned",
    "fd::17",
    "--upload-pack=touch /tmp/pwned",
    "-oProxyCommand=touch /tmp/pwned",
    "ssh://-oProxyCommand=touch/repo",
    "ext://whatever",
    "ftp://example.com/repo.git",
    "/srv/repo.git",
    "https://example.com/\nrepo",
]


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_urls_are_rejected_by_the_model(url: str) -> None:
    with pytest.raises(ValidationError, match="unsafe git URL"):
        GitSource(id="x", url=url)


def test_remote_helper_message() -> None:
    with pytest.raises(ValidationError, match=r"remote helpers \(ext::\) are refused"):
        GitSource(id="x", url="ext::sh -c id")


@pytest.mark.parametrize("url", UNSAFE[:5])
def test_unsafe_urls_are_refused_by_collect(url: str, tmp_path: Path, cache: Path) -> None:
    marker = tmp_path / "pwned"
    src = GitSource.model_construct(id="x", url=url.replace("/tmp/pwned", str(marker)), path=None,
                                    branch="HEAD", max_file_bytes=1000, timeout_seconds=10, kind="git")
    result = run(src, cache, ("head", {}))
    assert result.error.kind == "unsafe"
    assert not marker.exists() and not cache.exists()
    with pytest.raises(SourceFault) as info:
        read_text(src, "README.md", cache_dir=cache)
    assert info.value.error.kind == "unsafe"


@pytest.mark.parametrize(
    "url", ["https://github.com/o/r.git", "http://h/r", "git@github.com:o/r.git", "ssh://git@h:22/r", "git://h/r",
            "file:///srv/r.git"],
)
def test_safe_urls_are_accepted(url: str) -> None:
    assert GitSource(id="x", url=url).url == url


def test_source_needs_exactly_one_location() -> None:
    with pytest.raises(ValidationError, match="give either url or path, not both"):
        GitSource(id="x", url="https://h/r", path="/r")
    with pytest.raises(ValidationError, match="give url or path"):
        GitSource(id="x")
    with pytest.raises(ValidationError):
        GitSource(id="x", path="/r", depth=1)


# -- read_text -------------------------------------------------------------------


def test_read_text_at_older_commit(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    assert read_text(src, "docs/guide.md", cache_dir=cache, commit=fx.shas["c1"]) == ("guide\n", fx.shas["c1"])
    assert read_text(src, "src/app.py", cache_dir=cache, commit=fx.shas["c2"])[0].count("TODO") == 2
    text, sha = read_text(src, "link_in", cache_dir=cache)
    assert text.count("TODO") == 3 and sha == fx.shas["c4"]
    assert read_text(fx.source(branch="feature"), "feature.txt", cache_dir=cache) == ("feature\n", fx.shas["feature"])


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("docs/guide.md", "not_found"),  # renamed away at the tip
        ("docs", "not_found"),  # a folder, not a file
        ("broken_link", "not_found"),
        ("link_out", "unsafe"),
        ("sub/etc_link", "unsafe"),
        ("../outside.txt", "unsafe"),
        ("assets/logo.bin", "malformed"),
        ("big.txt", "malformed"),
    ],
)
def test_read_text_faults(fx: Fixture, cache: Path, path: str, kind: str) -> None:
    with pytest.raises(SourceFault) as info:
        read_text(fx.source(), path, cache_dir=cache)
    assert info.value.error.kind == kind
    assert "\n" not in info.value.error.message


def test_read_text_limits_and_unknown_commit(fx: Fixture, cache: Path) -> None:
    src = fx.source()
    assert read_text(src, "big.txt", cache_dir=cache, max_bytes=10_000)[0].count("TODO") == 1000
    with pytest.raises(SourceFault) as info:
        read_text(src, "README.md", cache_dir=cache, commit="0" * 40)
    assert info.value.error.kind == "not_found" and "commit" in info.value.error.message
    with pytest.raises(SourceFault) as missing:
        read_text(GitSource(id="x", path=str(fx.repo.path / "nope")), "a", cache_dir=cache)
    assert missing.value.error.kind == "not_found"


def test_unsafe_url_message_is_one_line_without_credentials() -> None:
    with pytest.raises(ValidationError) as info:
        GitSource(id="x", url="ftp://bob:hunter2@example.com/r\n.git")
    message = info.value.errors()[0]["msg"]
    assert "unsafe git URL" in message and "hunter2" not in message and "\n" not in message


def test_clone_timeout(tmp_path: Path, cache: Path) -> None:
    # A server that accepts the connection and never answers: only the timeout ends the clone.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        src = GitSource(id="slow", url=f"git://127.0.0.1:{port}/repo.git", timeout_seconds=1)
        started = time.monotonic()
        result = run(src, cache, ("head", {}))
    assert time.monotonic() - started < 30
    assert result.error.kind == "timeout" and result.error.retryable is True
    assert "127.0.0.1" in result.error.message and not any(cache.iterdir())


def test_symlink_loops_and_long_chains(git_repo: GitRepo, cache: Path) -> None:
    git_repo.write("target.txt", "TODO\n")
    git_repo.symlink("loop_a", "loop_b")
    git_repo.symlink("loop_b", "loop_a")
    # hop1 -> hop2 -> ... -> hop8 -> target.txt is eight hops; hop0 adds a ninth.
    for i in range(9):
        git_repo.symlink(f"hop{i}", f"hop{i + 1}" if i < 8 else "target.txt")
    git_repo.commit("links", when=C1)
    item = one(GitSource(id="l", path=str(git_repo.path)), cache, "content_match", glob="**", regex="TODO")
    assert item.value["paths"] == [f"hop{i}" for i in range(1, 9)] + ["target.txt"]
    assert sorted(s["path"] for s in item.value["skipped"]) == ["hop0", "loop_a", "loop_b"]
    assert {s["reason"] for s in item.value["skipped"]} == {"symlink_broken"}


def test_relative_cache_dir(fx: Fixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(GitSource(id="r", url=fx.repo.path.as_uri()), Path("rel-cache"), ("head", {}))
    assert result.error is None and result.fingerprint == fx.shas["c4"]
    assert len(list((tmp_path / "rel-cache").glob("*.git"))) == 1
