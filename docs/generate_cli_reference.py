"""Regenerate docs/cli.md from the app's own help: ``python docs/generate_cli_reference.py``."""

from __future__ import annotations

import html
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = ("<!-- Generated from the commands' help by `python docs/generate_cli_reference.py`; "
          "do not edit by hand. -->\n\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "cli.md"
        subprocess.run([sys.executable, "-m", "typer", "astrojepa_cli.app", "utils", "docs", "--name", "astrojepa",
                        "--output", str(raw)], check=True, capture_output=True)
        text = html.unescape(raw.read_text())
    (Path(__file__).parent / "cli.md").write_text(HEADER + text)


if __name__ == "__main__":
    main()
