"""Output channels: human chatter and progress on stderr, machine-readable JSON on stdout."""

from __future__ import annotations

import json
import sys

from rich.console import Console

stderr = Console(stderr=True)


def emit_json(payload: dict) -> None:
    """Print one JSON object on stdout (the ``--json`` result)."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()
