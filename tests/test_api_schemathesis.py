"""Property-based: schemathesis reads the OpenAPI document the real server serves, generates
requests for every operation, and finds no server error (5xx) and no answer that the
document does not describe (status, content type, headers, body schema).

Bounded and repeatable: at most 30 examples per operation, derandomised, no example database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from daemon.web.api import create_app
from tests.support.api import running, with_api
from tests.support.history import build_history

TOKEN = "schemathesis-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# The document does not depend on the configuration: read the paths at collection time.
PATHS = sorted(create_app(lambda: None).openapi()["paths"])  # type: ignore[arg-type, return-value]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, schemathesis.BaseSchema]]:
    history = build_history(tmp_path_factory.mktemp("schemathesis"))
    os.environ["PW_SCHEMATHESIS_TOKEN"] = TOKEN  # behind the token: the guard is part of what is checked
    try:
        # Ready (200): a 503 from /readyz is by design, and any 5xx counts as a failure here.
        config = with_api(history.config, token_env="PW_SCHEMATHESIS_TOKEN", ready_max_age="3650d")
        with running(config) as url:
            yield url, schemathesis.openapi.from_url(url + "/openapi.json", headers=AUTH, timeout=10)
    finally:
        del os.environ["PW_SCHEMATHESIS_TOKEN"]


@pytest.mark.parametrize("path", PATHS)
def test_operation_matches_its_documentation(served: tuple[str, schemathesis.BaseSchema], path: str) -> None:
    url, schema = served
    operation = schema[path]["GET"]
    cases = operation.as_strategy()
    if "{project}" in path:  # a generated project id is almost always unknown (404): also run against a real one
        cases = st.one_of(cases, operation.as_strategy(path_parameters={"project": "shop"}))

    @settings(max_examples=30, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=url, headers=AUTH, checks=CHECKS, timeout=10)

    check()
