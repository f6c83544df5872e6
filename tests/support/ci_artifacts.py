"""CI artifacts served for real: zips built from files, and a GitHub API plus a storage host on 127.0.0.1.

The GitHub answers are the recorded ones of ``tests/fixtures`` (see its
PROVENANCE.md), with their ``api.github.com`` and storage URLs pointed at the
local servers. The storage host is reached as ``localhost``, the API as
``127.0.0.1``: two hosts, as on GitHub, so a token that followed the redirect
would show in the storage server's requests.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

from tests.support.http_server import HttpServer, Reply
from tests.support.paths import fixture_text

RUNS = "/repos/o/r/actions/workflows/ci.yml/runs"
RUN_ID = 7842477524  # the newest run of gh_actions_list_workflow_runs.json
ARTIFACTS = f"/repos/o/r/actions/runs/{RUN_ID}/artifacts"
ARTIFACT_ID = 1242831742  # "artifact1" of gh_actions_list_workflow_run_artifacts.json
DOWNLOAD = f"/repos/o/r/actions/artifacts/{ARTIFACT_ID}/zip"
STORAGE = "/u72ug1Ib1ZBCtek798HyrDYOU28rBK6ssrOKf37ZxrpgUbk95I/_apis/pipelines/1/runs/75/signedartifactscontent"
GITLAB_DOWNLOAD = "/projects/group%2Fsvc/jobs/artifacts/release%2F1.x/download"


def make_zip(entries: dict[str, bytes | str], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding `entries` (name -> content), names written as given (even ``../x``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=compression)
    return out.getvalue()


def lie_about_size(data: bytes, declared: int) -> bytes:
    """`data` (a zip) whose central directory declares every entry `declared` bytes long uncompressed."""
    out, at = bytearray(data), 0
    while (at := out.find(b"PK\x01\x02", at)) != -1:
        struct.pack_into("<I", out, at + 24, declared)  # the uncompressed size field of the entry's record
        at += 4
    return bytes(out)


def storage_url(storage: HttpServer) -> str:
    """The storage server, by a host name other than the API's."""
    return storage.url.replace("127.0.0.1", "localhost")


def runs_listing() -> dict[str, Any]:
    return json.loads(fixture_text("gh_actions_list_workflow_runs.json"))


def artifacts_listing(api: HttpServer, *, expired: bool = False) -> dict[str, Any]:
    """The recorded artifacts of a run, their download URLs on `api`."""
    data = json.loads(fixture_text("gh_actions_list_workflow_run_artifacts.json").replace(
        "https://api.github.com/repos/hub4j-test-org/GHWorkflowRunTest", f"{api.url}/repos/o/r"))
    for artifact in data["artifacts"]:
        artifact["expired"] = expired
    return data


def redirect_to(storage: HttpServer) -> Reply:
    """The recorded 302 of ``GET .../artifacts/{id}/zip``, its Location on the local storage host."""
    recorded = json.loads(fixture_text("gh_actions_download_artifact_302_wiremock.json"))["response"]
    headers = dict(recorded["headers"])
    headers["Location"] = headers["Location"].replace("https://pipelines.actions.githubusercontent.com",
                                                      storage_url(storage))
    return Reply(recorded["status"], b"", headers)


def serve_github(api: HttpServer, storage: HttpServer, archive: bytes | Reply) -> None:
    """The whole GitHub exchange: runs, the run's artifacts, the 302, and the zip on the storage host."""
    api.route(RUNS, Reply(200, runs_listing()))
    api.route(ARTIFACTS, Reply(200, artifacts_listing(api)))
    api.route(DOWNLOAD, redirect_to(storage))
    storage.route(STORAGE, archive if isinstance(archive, Reply) else zip_reply(archive))


def zip_reply(archive: bytes) -> Reply:
    return Reply(200, archive, {"Content-Type": "application/zip"})
