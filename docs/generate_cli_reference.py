"""Regenerate docs/cli.md from the app's own help: ``python docs/generate_cli_reference.py``;
``--stdout`` prints the reference instead of writing it (a test compares the two)."""

from __future__ import annotations

import argparse
import html
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = ("<!-- Generated from the commands' help by `python docs/generate_cli_reference.py`; "
          "do not edit by hand. -->\n\n")
REFERENCE = Path(__file__).parent / "cli.md"


def reference() -> str:
    """The markdown reference that ``typer ... utils docs`` writes for the app, with this file's header."""
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "cli.md"
        subprocess.run([sys.executable, "-m", "typer", "astrojepa_cli.app", "utils", "docs", "--name", "astrojepa",
                        "--output", str(raw)], check=True, capture_output=True, cwd=Path(__file__).parents[1])
        return HEADER + html.unescape(raw.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdout", action="store_true", help="print the reference instead of writing docs/cli.md")
    text = reference()
    if parser.parse_args().stdout:
        sys.stdout.write(text)
    else:
        REFERENCE.write_text(text)


if __name__ == "__main__":
    main()
