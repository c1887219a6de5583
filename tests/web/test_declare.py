"""web.declare: parameters and bodies parsed from their declarations, 4xx naming the problem."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from tests.web.responses import assert_error
from tests.web.webdb import WebDb
from web.declare import MAX_BODY_BYTES, MAX_QUERY_BYTES
from web.validation import Invalid, body_validator


def test_declare_missing_required_parameter_is_400_naming_it(client: TestClient) -> None:
    body = assert_error(client.post("/api/monitor/start"), 400, "missing_parameter")
    assert body["parameter"] == "customer_id" and "customer_id" in body["message"]


def test_declare_malformed_uuid_is_400_naming_the_parameter(client: TestClient) -> None:
    body = assert_error(client.post("/api/monitor/start?customer_id=not-a-uuid"), 400, "invalid_parameter")
    assert body["parameter"] == "customer_id" and "UUID" in body["message"]
    body = assert_error(client.get("/api/customers/12345"), 400, "invalid_parameter")
    assert body["parameter"] == "customer_id"


def test_declare_repeated_parameter_is_400(client: TestClient, web_db: WebDb) -> None:
    cid = web_db.id("alice")
    body = assert_error(
        client.post(f"/api/monitor/stop?customer_id={cid}&customer_id={cid}"), 400, "invalid_parameter"
    )
    assert "more than once" in body["message"]


@pytest.mark.parametrize(
    ("query", "parameter", "words"),
    [
        ("limit=abc", "limit", "integer"),
        ("limit=0", "limit", "at least 1"),
        ("limit=501", "limit", "at most 500"),
        ("limit=1.5", "limit", "integer"),
        ("offset=-1", "offset", "at least 0"),
        ("monitored=yes", "monitored", "true or false"),
        ("service_type=dialup", "service_type", "pppoe, hotspot, static_ip"),
        ("status=gone", "status", "one of"),
        ("q=" + "x" * 101, "q", "at most 100"),
        ("q=a%00b", "q", "NUL"),
    ],
)
def test_declare_bad_query_values_are_400_naming_the_parameter(
    client: TestClient, query: str, parameter: str, words: str
) -> None:
    body = assert_error(client.get(f"/api/customers?{query}"), 400, "invalid_parameter")
    assert body["parameter"] == parameter
    assert words in body["message"], body["message"]


def test_declare_unknown_query_parameters_are_ignored(client: TestClient) -> None:
    # Dashboards add cache busters such as `_=<time>`.
    assert client.get("/api/customers?_=1764000000").status_code == 200


def test_declare_overlong_query_string_is_414(client: TestClient) -> None:
    body = assert_error(client.get("/api/customers?pad=" + "x" * MAX_QUERY_BYTES), 414, "query_too_long")
    assert str(MAX_QUERY_BYTES) in body["message"]


def test_declare_body_must_be_json(client: TestClient) -> None:
    assert_error(client.post("/api/customers", content=b"name=x"), 415, "unsupported_media_type")
    body = assert_error(
        client.post("/api/customers", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_body",
    )
    assert "not valid JSON" in body["message"]


def test_declare_body_too_large_is_413(client: TestClient) -> None:
    big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    assert_error(
        client.post("/api/customers", content=big, headers={"content-type": "application/json"}),
        413,
        "body_too_large",
    )


def test_declare_body_too_large_without_content_length_is_413(client: TestClient) -> None:
    def chunks():  # streamed: no Content-Length, counted while read
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    assert_error(
        client.post("/api/customers", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "body_too_large",
    )


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ([], "body", "an object"),
        ({"username": "x", "name": "x", "service_type": "pppoe"}, "mikrotik_id", "required"),
        (
            {"mikrotik_id": "r1", "username": "x", "name": "x", "service_type": "pppoe", "colour": 1},
            "colour",
            "not a known field",
        ),
        ({"mikrotik_id": "r1", "username": 5, "name": "x", "service_type": "pppoe"}, "username", "a string"),
        (
            {"mikrotik_id": "r1", "username": "x", "name": "x", "service_type": "dsl"},
            "service_type",
            "one of",
        ),
        (
            {"mikrotik_id": "r1", "username": "x", "name": "x", "service_type": "pppoe", "package_id": "1"},
            "package_id",
            "an integer or null",
        ),
        (
            {"mikrotik_id": "r1", "username": "x", "name": "x", "service_type": "pppoe", "pppoe_password": 7},
            "pppoe_password",
            "a string or null",
        ),
        (
            {"mikrotik_id": "r1", "username": "", "name": "x", "service_type": "pppoe"},
            "username",
            "at least 1",
        ),
    ],
)
def test_declare_body_not_matching_its_schema_is_400_naming_the_field(
    client: TestClient, body: object, field: str, words: str
) -> None:
    answer = assert_error(client.post("/api/customers", json=body), 400, "invalid_body")
    assert answer["field"] == field and words in answer["message"], answer


def test_declare_validation_never_echoes_a_password() -> None:
    with pytest.raises(Invalid) as caught:
        body_validator("CustomerUpdate").check({"pppoe_password": "a\x00-secret-b"})
    assert caught.value.where == "pppoe_password" and "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b'{"name": "a\\ud800b"}', "name", "UTF-8"),  # a lone surrogate: no encoding can store it
        (b'{"name": "a\\u0000b"}', "name", "NUL"),
        # A field name is not repeated in the answer (it could not be encoded either).
        (b'{"\\ud800": "x"}', "body", "field name"),
        (b'{"a\\u0000": "x"}', "body", "field name"),
    ],
)
def test_declare_unstorable_text_is_400_naming_where_it_is(
    client: TestClient, raw: bytes, field: str, words: str
) -> None:
    response = client.patch(
        f"/api/customers/{uuid.uuid4()}", content=raw, headers={"content-type": "application/json"}
    )
    body = assert_error(response, 400, "invalid_body")
    assert body["field"] == field and words in body["message"], body


def test_declare_head_answers_like_get(client: TestClient) -> None:
    response = client.head("/health")
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize("path", ["/api/session", "/api/customers"])
def test_declare_deeply_nested_body_is_400_not_a_crash(client: TestClient, path: str) -> None:
    """json.loads recurses per level: 20,000 brackets (40 KB, under the size limit)."""
    nested = "[" * 20_000 + "]" * 20_000
    response = client.post(path, content=nested, headers={"Content-Type": "application/json"})
    body = assert_error(response, 400, "invalid_body")
    assert "nested too deeply" in body["message"]
    nested_object = '{"token":' * 5_000 + "1" + "}" * 5_000
    response = client.post(path, content=nested_object, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_body")
