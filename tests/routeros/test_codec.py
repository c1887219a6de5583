"""Wire codec against the vectors of docs/routeros.md, Test vectors."""

from __future__ import annotations

import pytest

from routeros.codec import (
    CodecError,
    SentenceDecoder,
    decode_length,
    encode_length,
    encode_sentence,
    encode_word,
)

LENGTH_VECTORS = [
    (0x00, "00"),
    (0x01, "01"),
    (0x7F, "7F"),
    (0x80, "80 80"),
    (0x87, "80 87"),
    (0xFF, "80 FF"),
    (0x100, "81 00"),
    (0x3FFF, "BF FF"),
    (0x4000, "C0 40 00"),
    (0x4321, "C0 43 21"),
    (0x1FFFFF, "DF FF FF"),
    (0x200000, "E0 20 00 00"),
    (0x2ACDEF, "E0 2A CD EF"),
    (0xFFFFFFF, "EF FF FF FF"),
    (0x10000000, "F0 10 00 00 00"),
    (0x10000080, "F0 10 00 00 80"),
    (0xFFFFFFFF, "F0 FF FF FF FF"),
]

SENTENCE_VECTORS = [
    (["!done"], "05 21 64 6f 6e 65 00"),
    (
        ["/login", "=name=admin", "=password="],
        "06 2f 6c 6f 67 69 6e 0b 3d 6e 61 6d 65 3d 61 64 6d 69 6e 0a 3d 70 61 73 73 77 6f 72 64 3d 00",
    ),
    (
        ["/cancel", "=tag=m1", ".tag=c1"],
        "07 2f 63 61 6e 63 65 6c 07 3d 74 61 67 3d 6d 31 07 2e 74 61 67 3d 63 31 00",
    ),
    (
        ["!trap", "=category=2", "=message=interrupted", ".tag=m1"],
        "05 21 74 72 61 70 0b 3d 63 61 74 65 67 6f 72 79 3d 32 14 3d 6d 65 73 73 61 67 65 3d 69 6e 74 65"
        " 72 72 75 70 74 65 64 07 2e 74 61 67 3d 6d 31 00",
    ),
    (["!empty", ".tag=p1"], "06 21 65 6d 70 74 79 07 2e 74 61 67 3d 70 31 00"),
]


@pytest.mark.parametrize(("length", "encoded"), LENGTH_VECTORS, ids=[hex(v[0]) for v in LENGTH_VECTORS])
def test_length_encodes_to_documented_vector(length: int, encoded: str) -> None:
    assert encode_length(length) == bytes.fromhex(encoded)


@pytest.mark.parametrize(("length", "encoded"), LENGTH_VECTORS, ids=[hex(v[0]) for v in LENGTH_VECTORS])
def test_length_decodes_from_documented_vector(length: int, encoded: str) -> None:
    data = b"\xaa" + bytes.fromhex(encoded) + b"\xbb"
    assert decode_length(data, 1) == (length, 1 + len(bytes.fromhex(encoded)))


def test_length_encode_rejects_negative_and_oversized() -> None:
    with pytest.raises(CodecError):
        encode_length(-1)
    with pytest.raises(CodecError):
        encode_length(0x100000000)


@pytest.mark.parametrize("first", [0xF8, 0xF9, 0xFE, 0xFF])
def test_length_decode_rejects_control_byte(first: int) -> None:
    with pytest.raises(CodecError):
        decode_length(bytes([first, 0, 0, 0, 0]))


def test_length_decode_rejects_truncated_field() -> None:
    with pytest.raises(CodecError):
        decode_length(bytes.fromhex("E0 20 00"))


def test_length_decode_ignores_low_bits_of_f0_form() -> None:
    # MikroTik's reference client, go-routeros and node-routeros ignore them.
    assert decode_length(bytes.fromhex("F7 00 00 01 00")) == (256, 5)


@pytest.mark.parametrize(("words", "encoded"), SENTENCE_VECTORS, ids=[v[0][0] for v in SENTENCE_VECTORS])
def test_sentence_encodes_to_documented_vector(words: list[str], encoded: str) -> None:
    assert encode_sentence(words) == bytes.fromhex(encoded)


@pytest.mark.parametrize(("words", "encoded"), SENTENCE_VECTORS, ids=[v[0][0] for v in SENTENCE_VECTORS])
def test_sentence_decodes_from_documented_vector(words: list[str], encoded: str) -> None:
    assert SentenceDecoder().feed(bytes.fromhex(encoded)) == [words]


@pytest.mark.parametrize(("size", "prefix"), [(128, "80 80"), (256, "81 00"), (0x4000, "C0 40 00")])
def test_word_long_word_uses_multibyte_length(size: int, prefix: str) -> None:
    word = "=" + "x" * (size - 1)
    assert encode_word(word).startswith(bytes.fromhex(prefix))
    assert len(encode_word(word)) == size + len(bytes.fromhex(prefix))


def test_word_length_counts_utf8_bytes_not_characters() -> None:
    assert encode_word("=comment=é") == bytes([11]) + "=comment=é".encode()


def test_decoder_reassembles_sentences_fed_byte_by_byte() -> None:
    long_value = "=comment=" + "y" * 300
    data = encode_sentence(["!re", long_value, ".tag=7"]) + encode_sentence(["!done", ".tag=7"])
    decoder = SentenceDecoder()
    out: list[list[str]] = []
    for i in range(len(data)):
        out.extend(decoder.feed(data[i : i + 1]))
    assert out == [["!re", long_value, ".tag=7"], ["!done", ".tag=7"]]
    assert decoder.pending == 0


def test_decoder_returns_several_sentences_from_one_chunk_and_skips_empty_ones() -> None:
    data = b"\x00" + encode_sentence(["!done"]) + b"\x00" + encode_sentence(["!re", "=a=1"])
    assert SentenceDecoder().feed(data) == [["!done"], ["!re", "=a=1"]]


def test_decoder_keeps_partial_sentence_until_terminated() -> None:
    decoder = SentenceDecoder()
    assert decoder.feed(encode_word("/login") + encode_word("=name=admin")) == []
    assert decoder.feed(b"\x00") == [["/login", "=name=admin"]]


def test_decoder_raises_on_control_byte() -> None:
    decoder = SentenceDecoder()
    with pytest.raises(CodecError):
        decoder.feed(encode_word("/login") + b"\xf8")


def test_decoder_raises_on_word_over_limit() -> None:
    decoder = SentenceDecoder(max_word=1000)
    with pytest.raises(CodecError):
        decoder.feed(encode_length(5000) + b"x")


def test_decoder_handles_five_byte_length_form() -> None:
    # A word announced with the 0xF0 form is decoded like any other, here 3 bytes long.
    data = b"\xf0\x00\x00\x00\x03!re" + b"\x00"
    assert SentenceDecoder().feed(data) == [["!re"]]


def test_decoder_value_may_contain_equals_and_be_empty() -> None:
    data = encode_sentence(["/x", "=comment=a=b", "=empty="])
    assert SentenceDecoder().feed(data) == [["/x", "=comment=a=b", "=empty="]]
