"""Pre-encoded constant reply words and small builders for reply sentences."""

from __future__ import annotations

from collections.abc import Iterable

from ..codec import encode_word

__all__ = ["RE", "DONE", "TRAP", "EMPTY", "FATAL", "END", "attr_word", "tag_word", "reply"]

RE = encode_word("!re")
DONE = encode_word("!done")
TRAP = encode_word("!trap")
EMPTY = encode_word("!empty")
FATAL = encode_word("!fatal")
END = b"\x00"


def attr_word(key: str, value: str) -> bytes:
    return encode_word(f"={key}={value}")


def tag_word(tag: str | None) -> bytes:
    """Encoded `.tag=<tag>`, or nothing for an untagged command (replies then carry no tag)."""
    return b"" if not tag else encode_word(".tag=" + tag)


def reply(kind: bytes, attrs: Iterable[tuple[str, str]] = (), tag: bytes = b"") -> bytes:
    """One reply sentence; the tag goes last, as in MikroTik's own examples."""
    return kind + b"".join([attr_word(k, v) for k, v in attrs]) + tag + END


def trap(message: str, category: int | None, tag: bytes = b"") -> bytes:
    attrs = [] if category is None else [("category", str(category))]
    attrs.append(("message", message))
    return reply(TRAP, attrs, tag)
