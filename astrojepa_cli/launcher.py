"""The ``astrojepa`` console script: import the app, then run it.

Importing torch, timm and sklearn takes seconds; a Ctrl-C during them ends the
program with one line and exit 130 instead of a traceback from the imports.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from astrojepa_cli.app import main as run_app
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run_app()
