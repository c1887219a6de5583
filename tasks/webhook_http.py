"""One HTTP POST to a webhook, with the standard library (no new dependency).

Bounded: every socket operation times out after ALERT_WEBHOOK_TIMEOUT, redirects
are not followed (a moved receiver is a failed delivery the operator should see),
and at most a few KiB of the answer are read. Errors are described without the URL,
whose path or query may hold the receiver's token.
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

_ANSWER_BYTES = 4096


@dataclass(frozen=True)
class PostResult:
    status: int | None  # None: no HTTP answer at all
    error: str | None  # None on a 2xx

    @property
    def ok(self) -> bool:
        return self.error is None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        answer = response.read(_ANSWER_BYTES)
    except TimeoutError:
        return PostResult(None, f"no answer within {timeout:g} s")
    except ssl.SSLError as exc:
        return PostResult(None, f"TLS: {exc.reason or type(exc).__name__}")
    except OSError as exc:
        return PostResult(None, f"connection: {exc.strerror or type(exc).__name__}")
    except http.client.HTTPException as exc:
        return PostResult(None, f"HTTP: {type(exc).__name__}")
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return PostResult(response.status, None)
    snippet = answer[:200].decode("utf-8", "replace").strip()
    return PostResult(response.status, f"HTTP {response.status}" + (f": {snippet}" if snippet else ""))
