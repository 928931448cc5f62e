"""The ``astrojepa`` console script: import the app, build its commands, then run it.

A Ctrl-C while the app starts (importing typer and rich, building the command tree) ends the
program with one line and exit 130 instead of a traceback; once a command runs, the command
wrapper reports it the same way, and a Ctrl-C while the arguments are parsed too (torch and the
rest are imported inside the commands).
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
        _say_interrupted()
        raise SystemExit(EXIT_INTERRUPTED) from None
    try:
        command()
    except SystemExit as exc:
        # Typer turns a Ctrl-C that lands outside a command (while parsing) into a silent exit 130.
        if exc.code == EXIT_INTERRUPTED and isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt):
            _say_interrupted()
        raise


def _say_interrupted() -> None:
    sys.stderr.write("error: interrupted\n")
    sys.stderr.flush()
