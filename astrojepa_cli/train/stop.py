"""Ctrl-C and SIGTERM stop training at the end of a step, after a checkpoint, instead of mid-step."""

from __future__ import annotations

import signal


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> "StopRequest":
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
