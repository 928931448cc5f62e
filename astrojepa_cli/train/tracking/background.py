"""One tracker on a thread of its own: it starts there and takes its calls there, in order, so that
a slow, hung or failing dashboard (a server far away, or gone) never holds up a training step."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Protocol


class Tracker(Protocol):
    """What each tracker module's ``open(run, config, start_step)`` returns."""

    def log(self, step: int, values: dict[str, float]) -> None: ...

    def close(self, status: str) -> None: ...


class TrackerThread:
    """Starts a tracker with ``opener`` and runs the calls given to :meth:`submit` until the first
    failure, which it keeps as ``failure`` (the warning line to print) and after which it does nothing."""

    def __init__(self, name: str, opener: Callable[[], Tracker]) -> None:
        self.name = name
        self.failure: str | None = None
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, args=(opener,), name=f"astrojepa-{name}", daemon=True)
        self._thread.start()

    def submit(self, doing: str, call: Callable[[Tracker], None]) -> None:
        """Queue ``call``; ``doing`` names it in the warning if it fails."""
        self._calls.put((doing, call))

    def finish(self, timeout: float) -> bool:
        """Stop once the queued calls are done; False if they are not done within ``timeout`` seconds."""
        self._calls.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self, opener: Callable[[], Tracker]) -> None:
        tracker = None
        try:
            tracker = opener()
        except ImportError as exc:
            self.failure = (f"--log {self.name} needs the {self.name} extra "
                            f"(pip install 'astrojepa[{self.name}]'; {one_line(exc)})")
        except Exception as exc:  # noqa: BLE001 - an unreachable dashboard must not stop training
            self.failure = f"--log {self.name}: could not start ({one_line(exc)})"
        while (item := self._calls.get()) is not None:
            doing, call = item
            if self.failure is None:
                try:
                    call(tracker)
                except Exception as exc:  # noqa: BLE001 - nor may any later failure of it
                    self.failure = f"--log {self.name}: could not {doing} ({one_line(exc)})"


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``Class: first line of the message``, cut at ``limit`` characters."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
