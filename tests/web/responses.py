"""What the web layer's responses must look like, checked the same way by every test."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error shape with this status and code; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "error" and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body
