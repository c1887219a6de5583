"""A RouterOS API router simulator speaking the real wire protocol (see shared/routeros-facts.md)."""

from .config import SimulatorConfig
from .server import Simulator

__all__ = ["Simulator", "SimulatorConfig"]
