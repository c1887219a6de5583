"""Suite-wide set-up: the real services must be there, or the run fails loudly."""

from __future__ import annotations

import pytest

from tests.services import missing_services


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = missing_services()
    if problems:
        pytest.exit("required services are down:\n  " + "\n  ".join(problems), returncode=2)
