"""RouterOS API wire codec: word lengths, words and sentences.

Shared by the simulator (both directions) and by tests.  librouteros stops at the
4-byte length form; this codec also speaks the 0xF0 form so that the simulator can
be driven with any length a real router accepts.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CodecError",
    "MAX_LENGTH",
    "SentenceDecoder",
    "decode_length",
    "encode_length",
    "encode_sentence",
    "encode_word",
]

MAX_LENGTH = 0xFFFFFFFF

# Surrogateescape keeps non-UTF-8 bytes round-trippable (clients such as librouteros
# may send latin-1); a strict decode would turn a peer's encoding choice into a crash.
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


class CodecError(ValueError):
    """The byte stream is not a valid RouterOS API sentence stream."""


def encode_length(n: int) -> bytes:
    if n < 0:
        raise CodecError(f"negative length {n}")
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return (n | 0x8000).to_bytes(2, "big")
    if n < 0x200000:
        return (n | 0xC00000).to_bytes(3, "big")
    if n < 0x10000000:
        return (n | 0xE0000000).to_bytes(4, "big")
    if n <= MAX_LENGTH:
        return b"\xf0" + n.to_bytes(4, "big")
    raise CodecError(f"length {n} exceeds the protocol maximum {MAX_LENGTH}")


def _try_decode_length(buf: bytes | bytearray, offset: int) -> tuple[int, int] | None:
    """(length, offset after the length field), or None when buf ends inside the field."""
    end = len(buf)
    if offset >= end:
        return None
    b = buf[offset]
    if b < 0x80:
        return b, offset + 1
    if b < 0xC0:
        if offset + 2 > end:
            return None
        return ((b & 0x3F) << 8) | buf[offset + 1], offset + 2
    if b < 0xE0:
        if offset + 3 > end:
            return None
        return int.from_bytes(buf[offset : offset + 3], "big") & 0x1FFFFF, offset + 3
    if b < 0xF0:
        if offset + 4 > end:
            return None
        return int.from_bytes(buf[offset : offset + 4], "big") & 0xFFFFFFF, offset + 4
    if b < 0xF8:
        # 0xF1..0xF7: MikroTik's reference client, go-routeros and node-routeros all
        # ignore the low three bits, so we do too (lengths stay within 32 bits).
        if offset + 5 > end:
            return None
        return int.from_bytes(buf[offset + 1 : offset + 5], "big"), offset + 5
    raise CodecError(f"reserved control byte 0x{b:02X} at offset {offset}")


def decode_length(buf: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode the length field at buf[offset]; returns (length, offset just past the field).

    Raises CodecError on a control byte (>= 0xF8) or when buf ends inside the field.
    """
    result = _try_decode_length(buf, offset)
    if result is None:
        raise CodecError(f"truncated length field at offset {offset}")
    return result


def encode_word(word: str | bytes) -> bytes:
    data = word.encode(_ENCODING, _ERRORS) if isinstance(word, str) else bytes(word)
    n = len(data)
    if n < 0x80:
        return bytes((n,)) + data
    return encode_length(n) + data


def encode_sentence(words: Sequence[str | bytes]) -> bytes:
    return b"".join([encode_word(w) for w in words]) + b"\x00"


class SentenceDecoder:
    """Incremental decoder: feed arbitrary chunks, get back every sentence they complete.

    Empty sentences (a lone zero-length word) are skipped, as the router does.
    max_word bounds memory for a peer that announces a huge word (e.g. garbage bytes);
    exceeding it raises CodecError, as does a reserved control byte.  After a CodecError
    the stream is desynchronised and the decoder must not be fed again.
    """

    __slots__ = ("_buf", "_pos", "_words", "_max_word")

    def __init__(self, max_word: int = MAX_LENGTH) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._words: list[str] = []
        self._max_word = max_word

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete sentence."""
        return len(self._buf) - self._pos + sum(len(w) for w in self._words)

    def feed(self, data: bytes) -> list[list[str]]:
        buf = self._buf
        buf += data
        pos = self._pos
        words = self._words
        out: list[list[str]] = []
        end = len(buf)
        while pos < end:
            b = buf[pos]
            if b < 0x80:  # fast path: short word or end of sentence
                n, start = b, pos + 1
            else:
                res = _try_decode_length(buf, pos)
                if res is None:
                    break
                n, start = res
            if n == 0:
                pos = start
                if words:
                    out.append(words)
                    words = []
                continue
            if n > self._max_word:
                raise CodecError(f"word of {n} bytes exceeds the limit of {self._max_word}")
            if start + n > end:
                break
            words.append(bytes(buf[start : start + n]).decode(_ENCODING, _ERRORS))
            pos = start + n
        # Compact so a long-lived connection's buffer does not grow without bound.
        if pos:
            del buf[:pos]
        self._pos = 0
        self._words = words
        return out
