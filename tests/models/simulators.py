"""The simulated routers of the data-layer tests log in with this password."""

from __future__ import annotations

SIM_PASSWORD = "sim-Pa55-word"
