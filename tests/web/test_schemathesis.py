"""Schemathesis over the OpenAPI document, against a real uvicorn: every route, generated
valid and invalid requests; no 5xx, and every answer matches the status, content type,
headers and schema its operation declares.

Two built-in checks are replaced by stricter-but-honest versions of ours:
- no 5xx at all, except /ready's declared 503 (this run has no monitors worker) and a
  ping's declared 502/503 (nor a router);
- a schema-valid request may be refused only for what the schema cannot know, the stored
  state: an unknown id (404), a duplicate or an inactive customer (409), no free slot
  (429), a package_id that names no package, or a customer whose row cannot be monitored
  (422). Schemathesis reuses ids it saw in answers, so it does start real customers.
  Anything else (a 400, or another 422, for valid data) means the schema and the data
  layer disagree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from harness.web import Uvicorn, serving
from tests.web.webdb import WebDb
from web.declare import openapi
from web.routes import docs, endpoints

EXAMPLES = 15  # per operation and mode

# Loaded at import (parametrization needs it then) from the same rendering the server
# serves; the first test checks the server really serves exactly this document.
SCHEMA_DICT = openapi(endpoints(), title=docs.TITLE, version=docs.VERSION, description=docs.DESCRIPTION)
NEGATIVE_REFUSALS = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "414",
    "415",
    "422",
    "428",
    "429",
]
CONFIG = schemathesis.Config.from_dict(
    {
        # Strings with NUL are refused (400) everywhere: PostgreSQL cannot store them.
        "generation": {"allow-x00": False},
        # Too large a body or query string is refused too (schemathesis' list lacks 413/414).
        "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_REFUSALS}},
    }
)
schema = schemathesis.openapi.from_dict(SCHEMA_DICT, config=CONFIG)


def no_server_error(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    declared = case.operation.path == "/ready" and response.status_code == 503
    # This run has no router either: a ping of a real customer finds its router down.
    declared |= case.operation.path.endswith("/ping") and response.status_code in (502, 503)
    assert response.status_code < 500 or declared, f"{response.status_code}: {response.text[:300]}"
    return True


def valid_requests_accepted(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool:
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return True
    status = response.status_code
    if status < 400 or status in (404, 409, 429) or status >= 500:
        return True
    if status == 401 and case.operation.path == "/api/session":
        return True  # a well-formed token that is not API_TOKEN: only the server knows it
    body = response.json()
    stored_state = status == 422 and (
        # a package, or an alert rule's scope, that names no stored row
        body.get("field") in ("package_id", "scope") or body.get("code") == "customer_not_monitorable"
    )
    assert stored_state, f"a schema-valid request was refused: {case.operation.label} -> {status} {body}"
    return True


TOKEN = "fuzz-t0ken-9f3a-Jw4Qe7Uo1Pz6Mx3Cv9"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(web_db: WebDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uvicorn]:
    # With API_TOKEN set, so the fuzzer also checks that every route it calls without
    # credentials is refused (schemathesis' ignored_auth check), except the public ones.
    # The fuzzer sends wrong tokens on purpose (ignored_auth): it must not be throttled
    # into a run of 429s (tests/web/test_auth_edges.py checks the throttle).
    env = {**os.environ, "API_TOKEN": TOKEN, "AUTH_MAX_FAILURES": "1000000"}
    with serving(env, tmp_path_factory.mktemp("fuzz") / "uvicorn.log") as uvicorn:
        yield uvicorn


def test_schemathesis_fuzzes_the_document_the_server_serves(server: Uvicorn) -> None:
    assert httpx.get(f"{server.url}/openapi.json", headers=AUTH).json() == SCHEMA_DICT


# One test per operation and generation mode, each with its own id: schemathesis' own
# parametrize gives every operation the same test id, and pytest-xdist would then run
# only one of them. An operation with no parameters and no body has nothing to make
# invalid: positive only.
CASES = [
    (path, method, mode)
    for path, methods in SCHEMA_DICT["paths"].items()
    for method, operation in methods.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or operation.get("parameters") or operation.get("requestBody")
]


@pytest.mark.parametrize(
    ("path", "method", "mode"),
    CASES,
    ids=[f"{method.upper()} {path} {mode.value}" for path, method, mode in CASES],
)
def test_schemathesis_every_route_answers_as_declared(
    path: str, method: str, mode: GenerationMode, server: Uvicorn
) -> None:
    operation = SCHEMA_DICT["paths"][path][method]
    # Nothing to vary (no parameters, no body): a few requests say all there is, and
    # GET /ready waits WORKER_TIMEOUT (2 s) each for a monitors worker this server lacks.
    varies = bool(operation.get("parameters") or operation.get("requestBody"))

    @given(case=schema[path][method.upper()].as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES if varies else 3,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=server.url,
            headers=AUTH,
            excluded_checks=[not_a_server_error, positive_data_acceptance],
            additional_checks=[no_server_error, valid_requests_accepted],
        )

    check()
