"""The shape of the command line: a light start-up, a --help for every command and subcommand,
short forms that route to a default subcommand, and a CLI reference that matches the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from astrojepa_cli.app import app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "sklearn", "matplotlib", "h5py")


def _command_paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


COMMAND_PATHS = _command_paths(typer.main.get_command(app))


def test_importing_the_app_loads_no_heavy_library():
    script = f"import json, sys; import astrojepa_cli.app; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == []


def test_the_command_tree_holds_the_subcommands():
    for expected in [("fetch-data", "import"), ("fetch-data", "list"), ("fetch-data", "verify"), ("plot", "run"),
                     ("plot", "compare"), ("runs", "rm"), ("runs", "tag"), ("runs", "list"), ("probe",)]:
        assert expected in COMMAND_PATHS


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "astrojepa")
def test_every_command_has_its_own_help(cli, path):
    shown = cli(*path, "--help").stdout
    assert " ".join(("Usage:", "astrojepa", *path)) in " ".join(shown.split())


@pytest.mark.parametrize("short, full", [(("fetch-data", "first-radio"), "fetch-data import"),
                                         (("fetch-data", "hf:user/galaxies"), "fetch-data import"),
                                         (("plot", "latest"), "plot run")])
def test_short_forms_reach_the_default_subcommand(cli, short, full):
    assert full in " ".join(cli(*short, "--help").stdout.split())


def test_short_form_with_an_unknown_source_is_one_error_line(cli, home):
    result = cli("fetch-data", "no-such-source", expect=2)
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        line for line in result.stderr.splitlines() if line.startswith("error: unknown source 'no-such-source'")]


def test_cli_reference_matches_the_app():
    generated = subprocess.run([sys.executable, "docs/generate_cli_reference.py", "--stdout"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert generated == (ROOT / "docs" / "cli.md").read_text(), \
        "docs/cli.md is out of date: run python docs/generate_cli_reference.py"


def test_a_ctrl_c_while_the_arguments_are_parsed_is_one_line_and_exit_130(home):
    # The app's own callback runs while Typer parses, outside any command: a Ctrl-C there is what
    # Typer alone would turn into a silent exit 130.
    code = ("import astrojepa_cli.app as cli\n"
            "def interrupted():\n"
            "    raise KeyboardInterrupt\n"
            "cli.app.registered_callback.callback = interrupted\n"
            "from astrojepa_cli.launcher import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code, "runs", "list"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ASTROJEPA_HOME": str(home)})
    assert (done.returncode, done.stderr) == (130, "error: interrupted\n")
