"""Turns: a long loop (a scan, an export, an import) gives other requests theirs as it goes."""

from __future__ import annotations

import time

# How long a loop may compute before it gives other requests a turn: under gevent (one thread),
# a loop that never waits holds the whole server for its length.
TURN_SECONDS = 0.005
_turn_taken = [time.monotonic()]


def pace() -> None:
    """Called at each step of a long loop: once it has computed for TURN_SECONDS, give other
    requests a turn. Threads take the GIL; under gevent, a sleep of zero would only run the
    greenlets already ready, without polling for sockets, so the sleep is the shortest real one."""
    if time.monotonic() - _turn_taken[0] >= TURN_SECONDS:
        time.sleep(1e-6)
        _turn_taken[0] = time.monotonic()
