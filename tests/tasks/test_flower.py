"""Flower is not open (failure mode 20): basic auth on the API, and read-only refuses control.

Flower runs as deployed (`celery -A tasks flower ... --basic-auth --read_only`) with the
same broker settings as the workers. Anyone reaching an open Flower could revoke
monitors or shut workers down, so both locks are checked against the real process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from harness.polling import wait_for
from harness.process import free_port
from harness.workers import CeleryProcess
from tests.tasks.engine import BASE_ENV

USER, PASSWORD = "ops", "Fl0wer-pw-9z"


@pytest.fixture(scope="module")
def flower(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    # The credentials come from the environment, as compose passes them: never on the
    # command line, where `ps` shows them.
    env = {**os.environ, **BASE_ENV, "FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"}
    # Make sure nothing in the environment opens the API without credentials.
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    proc = CeleryProcess(
        ["flower", f"--port={port}", "--address=127.0.0.1", "--read_only=True"],
        env,
        tmp_path_factory.mktemp("flower") / "flower.log",
        "Visit me",
        "flower",
    )
    proc.start()
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if not proc.alive():
            raise AssertionError(f"flower exited:\n{proc.log()[-3000:]}")
        try:
            # /healthcheck is exempt from auth: it says the server is up, nothing more.
            return httpx.get(f"{base}/healthcheck", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 15.0, what="flower to answer", step=0.1)
        yield base
    finally:
        proc.stop(timeout=5.0)


def test_flower_api_without_credentials_is_refused(flower: str) -> None:
    response = httpx.get(f"{flower}/api/workers", timeout=5.0)
    assert response.status_code == 401
    assert not response.text.lstrip().startswith("{")  # no worker data comes with the refusal


def test_flower_api_with_wrong_credentials_is_refused(flower: str) -> None:
    for auth in [(USER, "wrong"), ("admin", PASSWORD), (USER, "")]:
        response = httpx.get(f"{flower}/api/workers", auth=auth, timeout=5.0)
        assert response.status_code == 401, auth


def test_flower_api_with_credentials_is_served(flower: str) -> None:
    response = httpx.get(f"{flower}/api/workers", auth=(USER, PASSWORD), timeout=10.0)
    assert response.status_code == 200
    assert isinstance(response.json(), dict)


def test_flower_read_only_refuses_revoke_even_with_credentials(flower: str) -> None:
    # Flower 2.2 answers 403 "Read only mode is enabled" (flower/api/control.py); the
    # message pins it to read-only, not to some other 403 (e.g. a cross-site check).
    response = httpx.post(
        f"{flower}/api/task/revoke/monitor-00000000-0000-0000-0000-000000000000-1",
        params={"terminate": "true"},
        auth=(USER, PASSWORD),
        timeout=5.0,
    )
    assert response.status_code == 403
    assert "Read only mode is enabled" in response.text
    # Without credentials the same request is refused before read-only even matters.
    anonymous = httpx.post(f"{flower}/api/task/revoke/some-task", timeout=5.0)
    assert anonymous.status_code == 401
