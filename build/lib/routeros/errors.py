"""What can go wrong when talking to a router, split by who is to blame.

- TrapError: the router understood us and said no (``!trap``). Retrying the same
  command will not help; the message is the router's own text.
- UnreachableError: we could not talk to the router at all (refused, timeout,
  reset, TLS failure, connection lost mid-call). Retrying later may help.
- ProtocolError: the router (or something pretending to be one) sent bytes we
  cannot make sense of; FatalError when it said ``!fatal`` and hung up.

Raw socket/ssl/librouteros exceptions never cross this package's boundary; they
are chained as ``__cause__`` for debugging but never carry credentials.
"""

from __future__ import annotations

from collections.abc import Sequence


class RouterError(Exception):
    """Base of every error the routeros package raises."""


class TrapError(RouterError):
    """The router answered ``!trap``.

    A single command can produce several traps before its ``!done``; all are kept
    in ``traps`` as (message, category) pairs, the first one is ``message``/``category``.
    """

    def __init__(
        self,
        message: str,
        category: int | None = None,
        traps: Sequence[tuple[str, int | None]] | None = None,
    ) -> None:
        self.message = message
        self.category = category
        self.traps: tuple[tuple[str, int | None], ...] = tuple(traps) if traps else ((message, category),)
        super().__init__(message)

    def __str__(self) -> str:
        if len(self.traps) > 1:
            return "; ".join(m for m, _ in self.traps)
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, category={self.category!r})"


class LoginError(TrapError):
    """The router refused the credentials (message is the router's text, never the password)."""


class UnreachableError(RouterError):
    """The router could not be reached, or the connection was lost."""


class ProtocolError(RouterError):
    """The byte stream made no sense (bad length byte, unexpected reply word...)."""


class FatalError(ProtocolError):
    """The router sent ``!fatal <reason>`` and closed the connection."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"router sent !fatal: {reason}")
