"""The git kind's models: :class:`GitSource`, its signals' parameters, and what they validate with.

``url_problem`` (which URLs may reach git) is here rather than in
:mod:`collectors.gitcommand` because validating a source needs it, and that
must not import GitPython.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.evidence import SignalParams, signal_table
from collectors.regex import regex_param
from collectors.secrets import strip_credentials
from collectors.testcases import Language, glob_param

__all__ = ["SCHEMES", "SIGNALS", "CommitsSince", "ContentMatch", "FileAge", "FileCount", "FileExists", "GitSource",
           "Head", "TestCases", "repo_path", "url_problem"]

SCHEMES = ("https", "http", "ssh", "git", "file")
_HELPER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+.-]*)?::")  # <transport>::<address>
_SCP = re.compile(r"^[A-Za-z0-9._~+-]+@[A-Za-z0-9][A-Za-z0-9.-]*:.+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def url_problem(url: str) -> str | None:
    """Why `url` must not be handed to git, or None when it is safe."""
    shown = f"unsafe git URL '{_CONTROL.sub('?', strip_credentials(url))}'"  # messages stay one line
    if url.startswith("-"):
        return f"{shown}: looks like a command-line option"
    helper = _HELPER.match(url)
    if helper:
        return f"{shown}: remote helpers ({helper.group(0)}) are refused"
    if _CONTROL.search(url):
        return f"{shown}: contains control characters"
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() not in SCHEMES:
            return f"{shown}: scheme '{parts.scheme}' is not one of {', '.join(SCHEMES)}"
        host = parts.hostname or ""
        if parts.scheme.lower() != "file" and (not host or host.startswith("-")):
            return f"{shown}: missing or invalid host"
        return None
    if _SCP.match(url):
        return None
    return f"{shown}: not a {', '.join(SCHEMES)} or user@host:path URL"


def repo_path(value: str) -> str:
    """Normalise a path relative to the repository root; refuse ones leaving it."""
    norm = posixpath.normpath(value.lstrip("/"))
    if norm in (".", "") or norm == ".." or norm.startswith("../"):
        raise ValueError(f"path '{value}' does not name a file inside the repository")
    return norm


class GitSource(BaseModel):
    """A git repository: a local path or a remote URL, read at one branch."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["git"] = "git"
    id: str
    url: str | None = None
    path: str | None = None
    branch: str = "HEAD"
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    # Bounds the memory of a tree listing: a few hundred bytes an entry.
    max_tree_entries: int = Field(default=500_000, gt=0)
    timeout_seconds: float = Field(default=120, gt=0)

    @model_validator(mode="after")
    def _one_location(self) -> GitSource:
        if self.url and self.path:
            raise ValueError("give either url or path, not both")
        if not self.url and not self.path:
            raise ValueError("give url or path")
        problem = url_problem(self.url) if self.url else None
        if problem:
            raise ValueError(problem)
        return self


_RepoPath = Annotated[str, AfterValidator(repo_path)]
# A glob, or a named preset such as `@tests` (collectors.testcases.GLOB_PRESETS).
_Glob = Annotated[str, Field(min_length=1), AfterValidator(glob_param)]

class FileExists(SignalParams):
    signal: Literal["file_exists"] = "file_exists"
    path: _RepoPath | None = None
    glob: _Glob | None = None
    default_field, default_transform = "exists", "bool"

    @model_validator(mode="after")
    def _path_or_glob(self) -> FileExists:
        if (self.path is None) == (self.glob is None):
            raise ValueError("give exactly one of path or glob")
        return self


class FileCount(SignalParams):
    signal: Literal["file_count"] = "file_count"
    glob: _Glob
    default_field, default_transform = "count", "bool"


class ContentMatch(SignalParams):
    signal: Literal["content_match"] = "content_match"
    glob: _Glob
    regex: str
    default_field, default_transform = "matches", "bool"

    _re2 = field_validator("regex")(lambda cls, v: regex_param(v))


class TestCases(SignalParams):
    __test__: ClassVar[bool] = False  # a parameter model, not a pytest test class

    signal: Literal["test_cases"] = "test_cases"
    glob: _Glob = "@tests"
    match: str | None = None
    language: Language | None = None
    default_field, default_transform = "count", "bool"

    _re2 = field_validator("match")(lambda cls, v: v if v is None else regex_param(v))


class FileAge(SignalParams):
    signal: Literal["file_age"] = "file_age"
    path: _RepoPath
    default_field, default_transform = "days", None


class CommitsSince(SignalParams):
    signal: Literal["commits_since"] = "commits_since"
    days: float = Field(gt=0)
    path: _RepoPath | None = None
    default_field, default_transform = "count", "bool"


class Head(SignalParams):
    signal: Literal["head"] = "head"
    default_field, default_transform = "age_days", None


SIGNALS = signal_table(FileExists, FileCount, ContentMatch, TestCases, FileAge, CommitsSince, Head)
