"""/openapi.json is rendered from the declarations the app parses requests with."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route
from starlette.testclient import TestClient

from web.app import routes
from web.auth import PAGE_PATHS
from web.routes import customers, endpoints


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_openapi_describes_every_route_and_method(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"]
    served = {
        (route.path, method.lower())
        for route in routes()
        if isinstance(route, Route) and route.path not in PAGE_PATHS  # the dashboard's page
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == served
    assert len(served) == len(endpoints()) == 39


def test_openapi_every_reference_resolves(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    refs = set(_refs(doc))
    assert refs and all(ref.startswith("#/components/schemas/") for ref in refs)
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(doc["components"]["schemas"])


def test_openapi_parameters_are_the_declared_ones(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    params = doc["paths"]["/api/customers"]["get"]["parameters"]
    assert [p["name"] for p in params] == [p.name for p in customers.LIST_PARAMS]
    limit = next(p for p in params if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    start = doc["paths"]["/api/monitor/start"]["post"]
    assert start["parameters"] == [
        {
            "name": "customer_id",
            "in": "query",
            "required": True,
            "description": "the customer's id (customers.id)",
            "schema": {"type": "string", "format": "uuid"},
        },
        {
            "name": "ping",
            "in": "query",
            "required": False,
            "description": "false: this session runs without the router-side ping (MONITOR_PING)",
            "schema": {"type": "boolean", "default": True},
        },
    ]


def test_openapi_errors_come_from_the_error_table(client: TestClient) -> None:
    responses = client.get("/openapi.json").json()["paths"]["/api/monitor/start"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "409", "414", "422", "429", "500", "503"}
    assert "`customer_not_found`" in responses["404"]["description"]
    assert "`already_monitored`" in responses["409"]["description"]
    assert "Retry-After" in responses["429"]["headers"]
    for status, response in responses.items():
        if status != "200":
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_openapi_passwords_are_write_only(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("CustomerCreate", "CustomerUpdate"):
        assert schemas[name]["properties"]["pppoe_password"]["writeOnly"] is True
    read = schemas["Customer"]["properties"]
    assert "pppoe_password" not in read and "hotspot_password" not in read
    assert read["has_pppoe_password"] == {"type": "boolean"}


def test_openapi_documents_the_csv_download(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/customers/{customer_id}/traffic.csv"]["get"]
    assert set(op["responses"]["200"]["content"]) == {"text/csv"}
    assert "Content-Disposition" in op["responses"]["200"]["headers"]
