"""Pre-encoded constant reply words and small builders for reply sentences."""

from __future__ import annotations

from collections.abc import Iterable

from ..codec import encode_word

__all__ = [
    "RE",
    "DONE",
    "TRAP",
    "EMPTY",
    "FATAL",
    "END",
    "TAG_POSITIONS",
    "UNTAGGED",
    "Tag",
    "attr_word",
    "reply",
    "trap",
]

RE = encode_word("!re")
DONE = encode_word("!done")
TRAP = encode_word("!trap")
EMPTY = encode_word("!empty")
FATAL = encode_word("!fatal")
END = b"\x00"

# "first": right after the reply word, where routers put it (docs/routeros.md, Tags);
# "last": after every attribute, as in MikroTik's own manual examples.
TAG_POSITIONS = ("first", "last")


def attr_word(key: str, value: str) -> bytes:
    return encode_word(f"={key}={value}")


class Tag:
    """A command's `.tag`, pre-encoded and placed where the simulated router puts it.

    Every reply sentence is ``kind + head + attribute words + tail``: the encoded
    `.tag=` word is in ``head`` (position "first") or in ``tail`` (position "last"),
    and ``tail`` always ends the sentence. An untagged command gets untagged replies.
    """

    __slots__ = ("value", "head", "tail")

    def __init__(self, value: str | None, position: str = "first") -> None:
        if position not in TAG_POSITIONS:
            raise ValueError(f"tag position must be one of {', '.join(TAG_POSITIONS)}, not {position!r}")
        self.value = value or None
        word = encode_word(".tag=" + value) if value else b""
        self.head = word if position == "first" else b""
        self.tail = (b"" if position == "first" else word) + END

    def __repr__(self) -> str:
        return f"Tag({self.value!r})"

    def sentence(self, kind: bytes, body: bytes = b"") -> bytes:
        """One reply sentence of this command: ``kind`` is a reply word, ``body`` encoded words."""
        return kind + self.head + body + self.tail


UNTAGGED = Tag(None)


def reply(kind: bytes, attrs: Iterable[tuple[str, str]] = (), tag: Tag = UNTAGGED) -> bytes:
    return tag.sentence(kind, b"".join([attr_word(k, v) for k, v in attrs]))


def trap(message: str, category: int | None, tag: Tag = UNTAGGED) -> bytes:
    attrs = [] if category is None else [("category", str(category))]
    attrs.append(("message", message))
    return reply(TRAP, attrs, tag)
