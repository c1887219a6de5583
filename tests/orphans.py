"""Child processes of a test run die with it.

Workers, beat, uvicorn and private redis-servers run in their own sessions (so a test
can signal them one by one). If pytest is killed (a CI timeout, Ctrl-C twice) their
teardown never runs, and a stray monitors worker would take the next run's messages.
Linux can tie a child's life to its parent's: PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A `preexec_fn`: SIGKILL this child when the process that started it exits."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
