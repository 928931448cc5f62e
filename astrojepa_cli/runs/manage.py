"""Deleting and naming runs (``runs rm``, ``runs tag``). Both change a run under its lock, like
every other manifest writer (see :mod:`astrojepa_cli.runs.store`)."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

from astrojepa_cli.atomic import write_json
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs.store import Run, list_runs

_RUN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


def delete_run(run: Run) -> None:
    """Delete a run's folder, refusing a run whose training process is alive. Under the run's lock,
    the folder is first renamed away, so no reader ever sees half a run, and a writer waiting for
    the lock finds the run gone instead of recreating its folder."""
    with run.locked("waiting to delete it") as on_disk:
        run.manifest = on_disk or run.manifest
        if run.status == "running":
            raise UserError(f"run {run.id} is still training (process {run.manifest.get('pid')} on "
                            f"{run.manifest.get('host')}); delete it when it has finished")
        doomed = run.dir.with_name(f".deleting-{run.id}-{secrets.token_hex(2)}")
        run.dir.rename(doomed)
    (doomed / "manifest.json").unlink()  # no longer a run, even if the rest cannot be removed
    shutil.rmtree(doomed)


def name_run(run: Run, name: str, root: Path | None = None) -> str | None:
    """Store ``name`` in the run's manifest, so commands accept it in place of the run id; a name held
    by another run moves to this one. Returns the id of the run the name moved from, if any. A run
    still training may be named: the trainer keeps the name when it next writes the manifest."""
    if not _RUN_NAME.fullmatch(name) or name == "latest":
        raise UserError(f"a run name starts with a letter and holds only letters, digits, '.', '_' and '-' "
                        f"(at most 64), and is not 'latest'; got '{name}'")
    holders = [other for other in list_runs(root) if other.manifest.get("name") == name and other.dir != run.dir]
    for holder in holders:
        _set_name(holder, None)
    _set_name(run, name)
    return holders[0].id if holders else None


def _set_name(run: Run, name: str | None) -> None:
    """Set (or, with None, remove) the run's name under its lock, keeping the rest of the manifest as on disk."""
    with run.locked("being named") as on_disk:
        manifest = {k: v for k, v in (on_disk or run.manifest).items() if k != "name"}
        run.manifest = manifest if name is None else {**manifest, "name": name}
        write_json(run.manifest_path, run.manifest)
