"""CI artifacts: the zip a GitHub Actions run uploaded, or a GitLab job's artifacts, fetched within one deadline.

GitHub: the newest completed run of a workflow on a branch (the github
collector's own listing, with its ETags and rate limits), that run's artifacts
(``GET /repos/{repo}/actions/runs/{run_id}/artifacts``), then the named one's
``archive_download_url``, which answers 302 to a storage URL on another host.
GitLab: ``GET /projects/{id}/jobs/artifacts/{ref}/download?job={name}``, the
job of that name in the newest successful pipeline of the ref.

Every hop of a download is a request of its own: the token goes to the API's
own origin (scheme, host and port) and never to another, such as the storage
host, whose signed URL is masked in messages. A zip over ``max_bytes`` is
refused as ``too_large`` as soon as it grows past it, never read in full.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectors.evidence import ErrorKind, Provenance, SourceFault
from collectors.github import API_HEADERS, GitHubSource, completed_runs
from collectors.gitlab import GitLabSource
from collectors.http import ApiClient, check_api_url, fetch, get_json, open_client, redirect_allowed, resolve_token
from collectors.httpcache import MAX_BLOCK_SECONDS, EtagCache, rate_limit_reset, utc_text
from collectors.secrets import one_line, redact_url, scrub, url_secrets

__all__ = ["Archive", "GitHubArtifact", "GitLabArtifact", "download"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_HOPS = 5
_LISTING_BYTES = 5_000_000  # an API answer (runs, artifacts), as the github collector bounds it
_STATUS_KINDS: dict[int, ErrorKind] = {401: "auth", 403: "auth", 404: "not_found", 410: "not_found", 429: "rate_limited"}


class _Artifact(BaseModel):
    """What both providers' artifacts share: a token, a bound, and where the download may be redirected."""

    model_config = ConfigDict(extra="forbid")

    api_url: str
    token_file: str | None = None
    max_bytes: int = Field(default=50_000_000, gt=0)  # the zip as downloaded
    # Storage lives on other hosts (GitHub: *.actions.githubusercontent.com, blob storage): any, by default.
    follow_redirects: bool | list[str] = ["*"]

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return check_api_url(value)


def _shape_error(exc: ValidationError) -> ValueError:
    """The provider model's own one-line complaint (repo, workflow, project), without pydantic's prefix."""
    return ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, "))


class GitHubArtifact(_Artifact):
    """A named artifact of the newest completed run of a GitHub Actions workflow."""

    repo: str
    workflow: str
    artifact: str = Field(min_length=1)
    branch: str | None = None
    api_url: str = "https://api.github.com"
    token_env: str | None = "GITHUB_TOKEN"

    @model_validator(mode="after")
    def _shapes(self) -> GitHubArtifact:
        try:
            self.runs_source("check", 1)
        except ValidationError as exc:
            raise _shape_error(exc) from None
        return self

    def runs_source(self, source_id: str, timeout: float) -> GitHubSource:
        """The workflow whose runs the github collector lists."""
        return GitHubSource(id=source_id, repo=self.repo, workflow=self.workflow, branch=self.branch,
                            api_url=self.api_url, token_env=None, timeout_seconds=timeout, max_bytes=_LISTING_BYTES)


class GitLabArtifact(_Artifact):
    """The artifacts of a job, by name, in the newest successful pipeline of a GitLab ref."""

    project: str
    job: str = Field(min_length=1)
    ref: str = Field(min_length=1)
    api_url: str = "https://gitlab.com/api/v4"
    token_env: str | None = "GITLAB_TOKEN"

    @model_validator(mode="after")
    def _shapes(self) -> GitLabArtifact:
        try:
            GitLabSource(id="check", project=self.project, api_url=self.api_url)
        except ValidationError as exc:
            raise _shape_error(exc) from None
        return self


@dataclass(frozen=True)
class Archive:
    """A downloaded zip, how messages name it, where it came from, and the deadline left to read it in."""

    data: bytes
    name: str
    provenance: Provenance
    fingerprint: str
    deadline: float  # monotonic: the same one the listing and the download ran under


def download(spec: GitHubArtifact | GitLabArtifact, *, timeout: float, cache_dir: Path | None) -> Archive:
    """The artifact's zip; raises SourceFault (not_found, too_large, timeout, rate_limited, ...) with one line.

    `timeout` bounds the whole of it: listing, artifacts and download.
    `cache_dir` keeps ETags and rate-limit blocks, shared with the github and gitlab collectors.
    """
    token = resolve_token(spec.token_env, spec.token_file)
    cache = EtagCache(cache_dir / "http") if cache_dir is not None else None
    if isinstance(spec, GitHubArtifact):
        with open_client(timeout=timeout, token=token, headers=API_HEADERS) as client:
            return _github(spec, client, cache, token, timeout)
    with open_client(timeout=timeout, token=token, auth_scheme="PRIVATE-TOKEN") as client:
        return _gitlab(spec, client, cache, token, timeout)


def _github(spec: GitHubArtifact, client: ApiClient, cache: EtagCache | None, token: str | None,
            timeout: float) -> Archive:
    where = f"workflow {spec.workflow} of {spec.repo}" + (f" on {spec.branch}" if spec.branch else "")
    runs = completed_runs(spec.runs_source("artifact", timeout), client, cache, 1)
    if not runs:
        raise SourceFault("not_found", f"no completed runs of {where}")
    run = runs[0]
    what = f"artifact {spec.artifact!r} of run {run.run_number or run.run_id} ({where})"
    url = f"{spec.api_url}/repos/{spec.repo}/actions/runs/{run.run_id}/artifacts"
    page = get_json(client, url, params={"name": spec.artifact, "per_page": 100}, cache=cache, max_bytes=_LISTING_BYTES)
    listed = page.data.get("artifacts") if isinstance(page.data, dict) else None
    if not isinstance(listed, list):
        raise SourceFault("malformed", f"GET {client.scrub(url)}: answer has no artifacts list")
    named = [a for a in listed if isinstance(a, dict) and a.get("name") == spec.artifact]
    if not named:
        raise SourceFault("not_found", f"{what}: the run uploaded no artifact of that name")
    live = [a for a in named if a.get("expired") is not True]
    if not live:
        raise SourceFault("not_found", f"{what}: expired at {one_line(named[0].get('expires_at'), 40)}")
    chosen = max(live, key=lambda a: str(a.get("created_at") or ""))  # a re-run attempt may upload it again
    link = chosen.get("archive_download_url")
    if not isinstance(link, str) or _origin(link) != _origin(spec.api_url):
        raise SourceFault("malformed", f"GET {client.scrub(url)}: {what} has no archive_download_url on the API's host")
    auth = {**API_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {})}
    data = _fetch_zip(client, cache, link, auth=auth, spec=spec, what=what, token=token, timeout=timeout)
    fingerprint = f"{run.run_id}:{chosen.get('id')}:{hashlib.sha256(data).hexdigest()[:16]}"
    return Archive(data, what, run.provenance, fingerprint, client.deadline)


def _gitlab(spec: GitLabArtifact, client: ApiClient, cache: EtagCache | None, token: str | None,
            timeout: float) -> Archive:
    url = (f"{spec.api_url}/projects/{quote(spec.project, safe='')}/jobs/artifacts/{quote(spec.ref, safe='')}"
           f"/download?job={quote(spec.job, safe='')}")
    what = f"artifacts of job {spec.job!r} on {spec.ref} of project {spec.project}"
    data = _fetch_zip(client, cache, url, auth={"PRIVATE-TOKEN": token} if token else {}, spec=spec, what=what,
                      token=token, timeout=timeout)
    return Archive(data, what, Provenance(url=url), hashlib.sha256(data).hexdigest(), client.deadline)


def _origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    import httpx  # httpx loads only when a source is fetched: start-up time

    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


def _fetch_zip(client: ApiClient, cache: EtagCache | None, url: str, *, auth: dict[str, str],
               spec: _Artifact, what: str, token: str | None, timeout: float) -> bytes:
    """Follow the download's redirects hop by hop (`auth` only on the API's origin) and return the zip."""
    import httpx  # httpx loads only when a source is fetched: start-up time

    home, scope = _origin(url), client.rate_scope(url)
    if cache is not None and (until := cache.blocked_until(scope)) > time.time():
        raise SourceFault("rate_limited", f"{what}: rate limited until {utc_text(until)}; not asking again before then",
                          retryable=True)
    for _ in range(_MAX_HOPS + 1):
        left = client.deadline - time.monotonic()
        shown = _shown(url, home)
        if left <= 0:
            raise _late(what, timeout)
        headers = {"Accept": "application/zip, */*", **(auth if _origin(url) == home else {})}
        try:
            got = fetch(url, headers=headers, timeout=left, max_bytes=spec.max_bytes, secret=token)
        except SourceFault as fault:
            if fault.error.kind == "timeout":
                raise _late(what, timeout) from None
            message = scrub(fault.error.message, [*url_secrets(url), token])
            raise SourceFault(fault.error.kind, f"{what}: {message}", retryable=fault.error.retryable) from None
        location = got.headers.get("location")
        if got.status not in _REDIRECTS or not location:
            break
        target = httpx.URL(url).join(location)
        if not redirect_allowed(spec.follow_redirects, httpx.URL(url), target):
            raise SourceFault("http_status", f"{what}: {shown}: HTTP {got.status} redirect to {target.scheme}://"
                                             f"{target.host} not followed (follow_redirects)")
        url = str(target)
    else:
        raise SourceFault("http_status", f"{what}: more than {_MAX_HOPS} redirects")
    if 200 <= got.status < 300:
        if got.oversize:
            raise SourceFault("too_large", f"{what}: the zip is over max_bytes={spec.max_bytes} bytes; not read further")
        return got.body
    reset = rate_limit_reset(httpx.Response(got.status, headers=got.headers), got.body)
    if reset is not None:
        if cache is not None and _origin(url) == home:  # the API's limit; a storage host's is its own
            cache.block(scope, min(reset, time.time() + MAX_BLOCK_SECONDS))
        raise SourceFault("rate_limited", f"{what}: {shown}: HTTP {got.status}, rate limited until {utc_text(reset)}",
                          retryable=True)
    kind = _STATUS_KINDS.get(got.status, "http_status")
    raise SourceFault(kind, f"{what}: {shown}: HTTP {got.status}", retryable=got.status >= 500)


def _shown(url: str, home: tuple[str, str, int | None]) -> str:
    """The URL for a message: the API's with secrets masked; of a storage host only its origin (its URL is signed)."""
    import httpx  # httpx loads only when a source is fetched: start-up time

    if _origin(url) == home:
        return redact_url(url)
    parsed = httpx.URL(url)
    return f"the storage host {parsed.scheme}://{parsed.netloc.decode()}"


def _late(what: str, timeout: float) -> SourceFault:
    return SourceFault("timeout", f"{what}: not done within timeout_seconds={timeout:g} "
                                  "(listing, artifacts and download together)", retryable=True)
