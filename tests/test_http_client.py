"""The shared HTTP client behaviour, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import socket
import time
from pathlib import Path

import pytest

from collectors.evidence import SourceFault
from collectors.http import get_json, iter_pages, open_client, resolve_token
from collectors.httpcache import EtagCache
from tests.support.http_server import HttpServer, Reply, Seen

SECRET = "ghp_sEcReT0123456789abcdef"
BIG = 1_000_000


def client(timeout: float = 5.0, token: str | None = SECRET, **kwargs: object):
    return open_client(timeout=timeout, token=token, **kwargs)  # type: ignore[arg-type]


def fault(call) -> SourceFault:
    with pytest.raises(SourceFault) as caught:
        call()
    return caught.value


def cache_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_get_json_sends_token_and_params(http_server: HttpServer) -> None:
    http_server.route("/things", Reply(200, {"a": 1}))
    with client() as c:
        page = get_json(c, f"{http_server.url}/things", params={"x": "1 2"}, max_bytes=BIG)
    assert page.data == {"a": 1} and not page.from_cache and page.next_url is None
    seen = http_server.requests[0]
    assert seen.path == "/things?x=1+2"
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    assert seen.headers["user-agent"] == "pillarwatch"


def test_header_name_as_auth_scheme_and_no_token(http_server: HttpServer) -> None:
    http_server.route("/x", Reply(200, []))
    with client(auth_scheme="PRIVATE-TOKEN") as c:
        get_json(c, f"{http_server.url}/x", max_bytes=BIG)
    with client(token=None) as c:
        get_json(c, f"{http_server.url}/x", max_bytes=BIG)
    first, second = http_server.requests
    assert first.headers["private-token"] == SECRET and "authorization" not in first.headers
    assert "authorization" not in second.headers and "private-token" not in second.headers


def test_etag_304_answers_from_disk_cache(http_server: HttpServer, tmp_path: Path) -> None:
    def etagged(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, {"n": 42}, headers={"ETag": '"v1"', "Link": f'<{http_server.url}/p?page=2>; rel="next"'})

    http_server.route("/p", etagged)
    url = f"{http_server.url}/p"
    with client() as c:
        first = get_json(c, url, params={"q": 1}, cache=EtagCache(tmp_path / "http"), max_bytes=BIG)
    with client() as c:  # a new client: only the disk remembers
        second = get_json(c, url, params={"q": 1}, cache=EtagCache(tmp_path / "http"), max_bytes=BIG)
    assert not first.from_cache and second.from_cache
    assert second.data == first.data == {"n": 42}
    assert second.next_url == first.next_url == f"{http_server.url}/p?page=2"
    assert "if-none-match" not in http_server.requests[0].headers
    assert http_server.requests[1].headers["if-none-match"] == '"v1"'
    stored = cache_bytes(tmp_path)
    assert b'v1' in stored and SECRET.encode() not in stored and b"Bearer" not in stored
    assert not list((tmp_path / "http").glob(".tmp-*"))  # atomic writes leave no temp files


def test_cache_is_per_token_and_survives_damage(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route("/p", Reply(200, {"n": 1}, headers={"ETag": '"e"'}))
    cache = EtagCache(tmp_path / "http")
    url = f"{http_server.url}/p"
    with client() as c:
        get_json(c, url, cache=cache, max_bytes=BIG)
    with client(token="another-token") as c:  # another credential never reuses the answer
        get_json(c, url, cache=cache, max_bytes=BIG)
    assert "if-none-match" not in http_server.requests[1].headers
    for entry in (tmp_path / "http").glob("*.json"):
        entry.write_text("{not json")
    with client() as c:  # a damaged entry is a miss, not a failure
        assert get_json(c, url, cache=cache, max_bytes=BIG).data == {"n": 1}
    assert "if-none-match" not in http_server.requests[2].headers


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [(401, "auth", False), (403, "auth", False), (404, "not_found", False), (500, "http_status", True),
     (503, "http_status", True), (418, "http_status", False), (304, "http_status", False)],
)
def test_status_codes_map_to_error_kinds(http_server: HttpServer, status: int, kind: str, retryable: bool) -> None:
    http_server.route("/s", Reply(status, {"message": f"no {SECRET}\nsecond line"}))
    with client() as c:
        error = fault(lambda: get_json(c, f"{http_server.url}/s", max_bytes=BIG)).error
    assert (error.kind, error.retryable) == (kind, retryable)
    assert f"GET {http_server.url}/s" in error.message and f"HTTP {status}" in error.message
    assert SECRET not in error.message and "\n" not in error.message
    assert len(http_server.requests) == 1  # nothing is retried within a run


def test_not_json_and_too_large_are_malformed(http_server: HttpServer) -> None:
    http_server.route("/html", Reply(200, "<html>oops</html>", headers={"Content-Type": "text/html"}))
    http_server.route("/big", Reply(200, [0] * 1000))
    # Small on the wire, big once decompressed: the limit applies to what is read.
    bomb = gzip.compress(json.dumps([0] * 100_000).encode())
    http_server.route("/bomb", Reply(200, bomb, headers={"Content-Encoding": "gzip"}))
    with client() as c:
        html = fault(lambda: get_json(c, f"{http_server.url}/html", max_bytes=BIG)).error
        big = fault(lambda: get_json(c, f"{http_server.url}/big", max_bytes=100)).error
        zipped = fault(lambda: get_json(c, f"{http_server.url}/bomb", max_bytes=10_000)).error
        assert get_json(c, f"{http_server.url}/bomb", max_bytes=BIG).data == [0] * 100_000
    assert html.kind == big.kind == zipped.kind == "malformed"
    assert "not JSON" in html.message and "exceeds 100 bytes" in big.message and "exceeds 10000" in zipped.message


def test_timeout_is_quick_and_retryable(http_server: HttpServer) -> None:
    http_server.route("/slow", Reply(200, {}, delay=10))
    started = time.monotonic()
    with client(timeout=0.5) as c:
        error = fault(lambda: get_json(c, f"{http_server.url}/slow", max_bytes=BIG)).error
    assert time.monotonic() - started < 3
    assert (error.kind, error.retryable) == ("timeout", True) and "0.5s" in error.message


def test_a_trickled_body_is_cut_at_the_deadline(http_server: HttpServer) -> None:
    http_server.route("/drip", Reply(200, [0] * 100, trickle=0.2))  # some 60 s to send in full
    started = time.monotonic()
    with client(timeout=1) as c:
        error = fault(lambda: get_json(c, f"{http_server.url}/drip", max_bytes=BIG)).error
    assert time.monotonic() - started < 3
    assert error.kind == "timeout"


def test_the_deadline_bounds_every_request_of_a_client_together(http_server: HttpServer) -> None:
    # Each page answers well within the timeout; together they do not.
    for n in range(1, 8):
        http_server.route(f"/list?page={n}", Reply(200, [n], headers={"Link": f'</list?page={n + 1}>; rel="next"'},
                                                   delay=0.4))
    started = time.monotonic()
    with client(timeout=1.5) as c:
        pages = iter_pages(c, f"{http_server.url}/list?page=1", max_bytes=BIG, max_pages=7)
        error = fault(lambda: list(pages)).error
    assert time.monotonic() - started < 2.5
    assert error.kind == "timeout" and len(http_server.requests) <= 4


def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with client() as c:
        error = fault(lambda: get_json(c, f"http://127.0.0.1:{port}/x", max_bytes=BIG)).error
    assert (error.kind, error.retryable) == ("unreachable", True) and f"127.0.0.1:{port}/x" in error.message


def test_long_rate_limit_is_remembered_and_not_asked_again(http_server: HttpServer, tmp_path: Path) -> None:
    reset = int(time.time()) + 1800
    http_server.route("/r", Reply(403, {"message": "API rate limit exceeded"},
                                  headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
    http_server.route("/other", Reply(200, {}))
    cache = EtagCache(tmp_path / "http")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    started = time.monotonic()
    with client() as c:
        first = fault(lambda: get_json(c, f"{http_server.url}/r", cache=cache, max_bytes=BIG)).error
        # Later calls to the same host with the same token do not ask at all, whatever the path.
        second = fault(lambda: get_json(c, f"{http_server.url}/other", cache=cache, max_bytes=BIG)).error
    assert time.monotonic() - started < 2  # deferred, not waited
    assert first.kind == second.kind == "rate_limited" and first.retryable
    assert stamp in first.message and stamp in second.message
    assert [s.path for s in http_server.requests] == ["/r"]
    with client(token="someone-else") as c:  # another credential has its own budget
        assert get_json(c, f"{http_server.url}/other", cache=cache, max_bytes=BIG).data == {}


def test_short_retry_after_waits_once_then_succeeds(http_server: HttpServer) -> None:
    answers = iter([Reply(429, {}, headers={"Retry-After": "1"}), Reply(200, {"ok": True})])
    http_server.route("/r", lambda seen: next(answers))
    started = time.monotonic()
    with client() as c:
        assert get_json(c, f"{http_server.url}/r", max_bytes=BIG).data == {"ok": True}
    assert 0.9 <= time.monotonic() - started < 5
    assert len(http_server.requests) == 2


def test_short_wait_happens_once_only(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route("/r", Reply(403, {"message": "secondary"}, headers={"retry-after": "0"}))
    with client() as c:
        error = fault(lambda: get_json(c, f"{http_server.url}/r", cache=EtagCache(tmp_path), max_bytes=BIG)).error
    assert error.kind == "rate_limited" and len(http_server.requests) == 2


def test_exhausted_budget_on_success_blocks_the_next_call(http_server: HttpServer, tmp_path: Path) -> None:
    reset = str(int(time.time()) + 600)
    http_server.route("/r", Reply(200, {"last": True}, headers={"x-ratelimit-remaining": "0",
                                                                "x-ratelimit-reset": reset}))
    cache = EtagCache(tmp_path / "http")
    with client() as c:
        assert get_json(c, f"{http_server.url}/r", cache=cache, max_bytes=BIG).data == {"last": True}
        again = fault(lambda: get_json(c, f"{http_server.url}/r", cache=cache, max_bytes=BIG)).error
    assert again.kind == "rate_limited"
    assert len(http_server.requests) == 1


def test_iter_pages_follows_next_links_within_the_host(http_server: HttpServer) -> None:
    url = http_server.url
    two = f'<{url}/list?page=2>; rel="next", <{url}/list?page=2>; rel="last"'
    http_server.route("/list", Reply(200, [1, 2], headers={"Link": two}))
    http_server.route("/list?page=2", Reply(200, [3], headers={"Link": '</list?page=3>; rel="next"'}))
    away = '<http://elsewhere.invalid/list?page=4>; rel="next"'
    http_server.route("/list?page=3", Reply(200, [4], headers={"Link": away}))
    with client() as c:
        pages = iter_pages(c, f"{url}/list", params={"per_page": 2}, max_bytes=BIG, max_pages=5)
        assert [next(pages).data for _ in range(3)] == [[1, 2], [3], [4]]
        error = fault(lambda: next(pages)).error
        assert error.kind == "malformed" and "another host" in error.message
        limited = iter_pages(c, f"{url}/list", max_bytes=BIG, max_pages=2)
        assert [p.data for p in limited] == [[1, 2], [3]]
    assert [s.path for s in http_server.requests[:3]] == ["/list?per_page=2", "/list?page=2", "/list?page=3"]


def test_redirects_followed_only_on_the_same_host(http_server: HttpServer) -> None:
    http_server.route("/old", Reply(301, headers={"Location": "/new"}))
    http_server.route("/new", Reply(200, {"moved": True}))
    http_server.route("/away", Reply(302, headers={"Location": "http://elsewhere.invalid/steal"}))
    with client(auth_scheme="PRIVATE-TOKEN") as c:
        assert get_json(c, f"{http_server.url}/old", max_bytes=BIG).data == {"moved": True}
        error = fault(lambda: get_json(c, f"{http_server.url}/away", max_bytes=BIG)).error
    assert error.kind == "http_status" and "elsewhere.invalid" in error.message
    assert http_server.requests[1].headers["private-token"] == SECRET


def test_resolve_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_TOKEN_A", f"  {SECRET}\n")
    monkeypatch.setenv("PW_EMPTY", "")
    monkeypatch.delenv("PW_UNSET", raising=False)
    assert resolve_token("PW_TOKEN_A", None) == SECRET
    assert resolve_token("PW_UNSET", None) is None and resolve_token("PW_EMPTY", None) is None
    assert resolve_token(None, None) is None
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert resolve_token("PW_TOKEN_A", str(token_file)) == "from-file"  # a named file wins
    missing = fault(lambda: resolve_token(None, str(tmp_path / "nope"))).error
    assert (missing.kind, missing.message) == ("auth", f"token file {tmp_path / 'nope'}: cannot read: No such file or directory")
    token_file.write_text("\n")
    assert fault(lambda: resolve_token(None, str(token_file))).error.kind == "auth"
    token_file.write_text("two words\n")
    error = fault(lambda: resolve_token(None, str(token_file))).error
    assert error.kind == "auth" and "two" not in error.message
