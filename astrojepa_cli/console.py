"""Output channels: human chatter and progress on stderr, machine-readable JSON on stdout; and the
few number formats every command shares, so a value reads the same wherever it is printed."""

from __future__ import annotations

import json
import sys

from rich.console import Console

# Where stderr is a file or a pipe (nohup, SLURM, `2> log`), nothing is wrapped at a made-up width:
# long lines stay whole, so paths and run ids can be copied and grepped. A terminal wraps at its width.
UNWRAPPED_WIDTH = 10_000


def _stderr_console() -> Console:
    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, soft_wrap=True, width=UNWRAPPED_WIDTH)


stderr = _stderr_console()


def emit_json(payload: dict) -> None:
    """Print one JSON object on stdout (the ``--json`` result)."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def significant(value: float | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant figures (a loss: ``5.236``); ``-`` for a missing value."""
    return "-" if value is None else f"{value:.{digits}g}"


def images_per_second(rate: float) -> str:
    """Throughput as every command prints it: whole images per second, two significant figures below ten."""
    return f"{rate:,.0f} img/s" if rate >= 10 else f"{rate:.2g} img/s"


def counts(by_name: dict[str, int]) -> str:
    """``{"test": 200, "train": 1758}`` -> ``test 200, train 1,758``."""
    return ", ".join(f"{name} {count:,}" for name, count in by_name.items())
