"""A guard that turns a hang (a pipe read, an endless walk) into a test failure instead of a stuck test run."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class Hung(BaseException):
    """Raised where the body was blocked; a BaseException, so no ``except Exception`` turns it into a message."""


@contextmanager
def deadline(seconds: float, what: str = "the body") -> Iterator[None]:
    """Fail with Hung if the body has not finished after ``seconds``."""

    def on_alarm(signum, frame):
        raise Hung(f"gave up after {seconds} s: {what} hangs")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
