"""What every command shares: option types, error translation and result printing.

Exit codes: 0 success, 1 unexpected internal error, 2 bad input (one ``error:``
line), 3 training failed (non-finite loss), 130 interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.markup import escape

from astrojepa_cli.atomic import disk_full_error
from astrojepa_cli.console import emit_json, stderr
from astrojepa_cli.errors import UserError
from registry import PluginError, UnknownPluginError

EXIT_BAD_INPUT = 2
EXIT_TRAINING_FAILED = 3
EXIT_INTERRUPTED = 130

RootOption = Annotated[
    Optional[Path],
    typer.Option("--root", help="Folder holding data/ and runs/ (default: $ASTROJEPA_HOME or ~/.astrojepa).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object with the result on stdout.")]
RunArgument = Annotated[str, typer.Argument(help="Run id, run name, run folder, or 'latest' (the newest completed run).")]
DataOption = Annotated[Optional[str], typer.Option("--data", help="Store name (default: the run's training data).")]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
TtaOption = Annotated[str, typer.Option(
    "--tta", help="none, or d4: average the embeddings of the 8 rotations/flips of each image.")]
PoolOption = Annotated[Optional[str], typer.Option(
    "--pool", help="mean (the encoder's pooled output), cls (ViTs with a class token) or last2 (the last two "
                   "stages' means, concatenated); default: the run's embedding (pretrain --embedding-pool).",
    show_default=False)]


class Settings:
    """Process-wide CLI settings from the top-level callback."""

    debug: bool = bool(os.environ.get("ASTROJEPA_DEBUG"))


class _WarningLine(logging.Handler):
    """Library warnings (a skipped plugin or run) as one ``warning:`` line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        stderr.print(f"[yellow]warning:[/] {escape(record.getMessage())}", highlight=False, soft_wrap=True)


for _name in ("astrojepa", "registry"):
    logging.getLogger(_name).addHandler(_WarningLine(logging.WARNING))
    logging.getLogger(_name).propagate = False


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def cli_command(function: Callable) -> Callable:
    """Turn bad input into one ``error:`` line and exit 2; never a traceback unless --debug."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (UserError, UnknownPluginError, PluginError) as exc:
            if Settings.debug:
                raise
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        except OSError as exc:
            message = file_error_message(exc)
            if Settings.debug or message is None:
                raise
            raise fail(message) from None
        except Exception as exc:
            if Settings.debug:
                raise
            raise fail(f"internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)", 1) from None

    return wrapper


def file_error_message(exc: OSError) -> str | None:
    """One line for the file-system errors a user can fix (a missing file, a read-only folder, a
    full disk); None for the rest, which are internal errors."""
    full = disk_full_error(exc, Path(exc.filename or "a file"))
    if full is not None:
        return str(full)
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename} (is the folder read-only? choose another with --root)"
    if exc.errno == errno.EROFS:
        return f"read-only file system: {exc.filename} (choose another folder with --root)"
    return None


def report(payload: dict, as_json: bool, human: Callable[[], None] | None = None) -> None:
    """The result: JSON on stdout with ``--json``, else the human rendering on stderr."""
    if as_json:
        emit_json(payload)
    elif human is not None:
        human()
    else:
        for key, value in payload.items():
            stderr.print(f"[bold]{key}[/]: {value}", highlight=False)
