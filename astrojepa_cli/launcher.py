"""The ``astrojepa`` console script: import the app, build its commands, then run it.

A Ctrl-C while the app starts (importing typer and rich, building the command tree) ends the
program with one line and exit 130 instead of a traceback; once a command runs, the command
wrapper reports it the same way (torch and the rest are imported inside the commands).
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        import typer

        from astrojepa_cli.app import app

        command = typer.main.get_command(app)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    command()
