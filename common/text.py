"""Text from Redis: replies and stream fields come as bytes or str, depending on the client."""

from __future__ import annotations

__all__ = ["as_text"]


def as_text(value: object) -> str:
    """Redis replies and stream fields arrive as bytes or str: always text."""
    return value.decode() if isinstance(value, bytes) else str(value)
