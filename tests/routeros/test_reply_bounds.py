"""Replies beyond the reader's bounds (docs/routeros.md, Bounds on replies).

A length prefix is never believed beyond MAX_REPLY_WORD, a sentence never grows past
MAX_REPLY_WORDS words or MAX_REPLY_SENTENCE bytes. Past any of them the byte stream is
out of step, so the connection goes, with one warning; the client re-dials and its
streams flow again. Raw bytes from a scripted router on a real socket.
"""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from routeros import ProtocolError, RouterClient, RouterEndpoint, Stream
from routeros.codec import encode_length, encode_sentence
from routeros.connection import MAX_REPLY_SENTENCE, MAX_REPLY_WORD, MAX_REPLY_WORDS, open_connection
from tests.routeros.client_support import next_event
from tests.routeros.raw_router import RawRouter, listen_and_identity

# Generous for a loaded CI; a reconnect on loopback takes milliseconds.
EVENT_TIMEOUT = 10.0


@contextmanager
def _listening() -> Iterator[tuple[RawRouter, RouterClient, Stream]]:
    """A raw router, a client on it, and a /listen stream that has carried its first row."""
    with RawRouter(listen_and_identity) as router:
        # keepalive 5 s: the bounds, not the stall watchdog, must end the connection.
        with RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=2.0), keepalive=5) as client:
            stream = client.stream("/listen")
            next_event(stream, {"data"}, timeout=EVENT_TIMEOUT)
            yield router, client, stream


def _costs_one_reconnect(client: RouterClient, stream: Stream, words: str) -> None:
    """The stream says reconnecting with `words` in its reason, then flows again."""
    event, seen = next_event(stream, {"reconnecting"}, timeout=EVENT_TIMEOUT)
    assert not seen, [e.kind for e in seen]
    assert "protocol error" in (event.message or "") and words in (event.message or ""), event.message
    next_event(stream, {"resumed"}, timeout=EVENT_TIMEOUT)
    next_event(stream, {"data"}, timeout=EVENT_TIMEOUT)
    assert client.call("/system/identity/print") == [{"name": "raw"}]
    assert client.stats()["reconnects"] == 1


@pytest.mark.parametrize(
    "length",
    [MAX_REPLY_WORD + 1, 0x1FFFFF, 0xFFFFFFF],
    ids=["bound+1", "3-byte-max", "4-byte-max"],
)
def test_reply_bounds_word_longer_than_the_bound_costs_one_reconnect_and_one_warning(
    length: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="routeros"), _listening() as (router, client, stream):
        # A prefix and a few bytes: an old reader waited for the rest for ever, and the
        # keepalive replies it swallowed as word bytes kept the watchdog content.
        router.inject(encode_length(length) + b"=n=2")
        _costs_one_reconnect(client, stream, f"reply word of {length} bytes")
    lines = [r for r in caplog.records if "reply word of" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING


def test_reply_bounds_sentence_with_more_words_than_the_bound_costs_a_reconnect() -> None:
    with _listening() as (router, client, stream):
        at_limit = ["!re", f".tag={stream.tag}", *(f"=k{i}=v" for i in range(MAX_REPLY_WORDS - 2))]
        router.inject(encode_sentence(at_limit))
        event, _ = next_event(stream, {"data"}, timeout=EVENT_TIMEOUT)
        assert event.data is not None and len(event.data) == MAX_REPLY_WORDS - 2
        router.inject(encode_sentence([*at_limit, "=one=more"]))
        _costs_one_reconnect(client, stream, f"more than {MAX_REPLY_WORDS} words")


def test_reply_bounds_sentence_of_more_bytes_than_the_bound_costs_a_reconnect() -> None:
    with _listening() as (router, client, stream):
        largest = "=k=" + "x" * (MAX_REPLY_WORD - 3)  # one word exactly at its bound
        router.inject(encode_sentence(["!re", f".tag={stream.tag}", largest]))
        event, _ = next_event(stream, {"data"}, timeout=EVENT_TIMEOUT)
        assert event.data is not None and len(event.data["k"]) == MAX_REPLY_WORD - 3
        # Words each within their bound, together past the sentence's.
        count = MAX_REPLY_SENTENCE // MAX_REPLY_WORD
        words = [f"=k{i}=" + "x" * (MAX_REPLY_WORD - 4) for i in range(count)]
        router.inject(encode_sentence(["!re", f".tag={stream.tag}", *words]))
        _costs_one_reconnect(client, stream, f"more than {MAX_REPLY_SENTENCE} bytes")


def test_reply_bounds_login_reply_claiming_a_huge_word_fails_at_once_without_allocating_it() -> None:
    with RawRouter(listen_and_identity) as router:
        router.login_reply = encode_length(0xFFFFFFF) + b"!done"
        endpoint = RouterEndpoint("127.0.0.1", router.port, timeout=5.0)
        tracemalloc.start()
        try:
            # Not UnreachableError after the timeout: librouteros's own reader asked
            # recv() for 256 MiB, allocating it, then waited for bytes that never came.
            with pytest.raises(ProtocolError, match=f"reply word of {0xFFFFFFF} bytes"):
                open_connection(endpoint)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated while reading the login reply"
