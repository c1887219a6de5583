"""common/text.py: Redis replies as text, whichever form the client returned."""

from __future__ import annotations

from common.text import as_text


def test_text_as_text_decodes_bytes_and_passes_text_through() -> None:
    assert as_text(b"1700000000000-0") == "1700000000000-0"
    assert as_text("caf\u00e9") == "caf\u00e9"
    assert as_text("caf\u00e9".encode()) == "caf\u00e9"
    assert as_text(42) == "42"
