"""The bad-input and fault catalogue's harness: the shared home, how a case runs, and what it promises.

The catalogue itself is split by theme: ``test_bad_input_catalogue_data.py`` (stores,
imports, configs, flags, devices), ``test_bad_input_catalogue_runs.py`` (run folders
and the files in them) and ``test_bad_input_catalogue_faults.py`` (resuming, the
machine, concurrency, plugins). Every case is a real CLI invocation on real files, and
promises:
- its exit code (2 for bad input, 0 where the right answer is to carry on, e.g. a torn log);
- exactly one ``error:`` line when it fails (none when it succeeds), and never a traceback;
- every store and run that existed before the case is byte-identical afterwards.

Every case starts from a copy of one home: a 16 px store and a completed two-step
run (which kept its optimiser state) with an anomalies evaluation. Large files are hard-linked into the copy
(astrojepa replaces files by renaming, so a write can never reach the original)
and their digests are cached by inode and modification time.

To add a case, append a ``Case`` to the ``CASES`` of its theme's file: the arguments
(``{run}``, ``{tmp}`` and ``{home}`` are filled in), the exit code, and optionally a
``setup`` that makes the bad input and an ``after`` that checks more promises.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

LINKED_BYTES = 1 << 20
SCRIPT = Path(sys.executable).parent / "astrojepa"
TINY = ("--data", "blobs", *TINY_PRETRAIN, "--max-steps", "2")


@dataclass
class Env:
    """One case's world: its home, a scratch folder, the base run, and anything ``setup`` started."""

    home: Path
    tmp: Path
    run: str
    cli: Cli
    values: dict = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.home / "runs" / self.run

    def copy_run(self, name: str) -> Path:
        """A second run folder made from the base run (big files linked, small ones copied)."""
        copy = self.home / "runs" / name
        _copy_tree(self.run_dir, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        replace_file(copy / "manifest.json", json.dumps({**manifest, "run_id": name}).encode())
        return copy


@dataclass
class Case:
    name: str
    args: tuple[str, ...]
    code: int = 2
    setup: Callable[[Env], None] | None = None
    after: Callable[[Env, object], None] | None = None
    invented: bool = False  # not among the failures first reported; added with its fix


def replace_file(path: Path, data: bytes) -> None:
    """Write a file by replacing it, so a hard-linked original is never touched."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _copy_tree(source: Path, target: Path) -> None:
    def link_or_copy(src: str, dst: str) -> None:
        if os.path.getsize(src) > LINKED_BYTES:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)


_digests: dict[tuple, str] = {}


def _digest(path: Path) -> str:
    stat = path.stat()
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _digests[key]


def _snapshot(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): _digest(p) for p in sorted(home.rglob("*")) if p.is_file() and p.name != ".lock"}


def _command() -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT)]
    return [sys.executable, "-c", "from astrojepa_cli.launcher import main; main()"]


def spawn(env: Env, *args: str, **extra_env: str) -> subprocess.Popen:
    environment = {**os.environ, "ASTROJEPA_HOME": str(env.home), "OMP_NUM_THREADS": "1", **extra_env}
    return subprocess.Popen([*_command(), *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def other_run_with(env: Env, file_name: str, process: subprocess.Popen, timeout: float = 90) -> str:
    """The id of the run, other than the base run, in which ``process`` has written ``file_name``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p.parent.name for p in (env.home / "runs").glob(f"*/{file_name}") if p.parent.name != env.run]
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {file_name} after {timeout} s"
        time.sleep(0.05)


@dataclass
class Outcome:
    """What a subprocess case returns, shaped like click's Result."""

    exit_code: int
    stdout: str
    stderr: str


# --- inputs and promises that cases of more than one theme use -----------------------------------


def file_setup(relative: str, content: bytes | str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return setup


def npz_setup(images: np.ndarray) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        np.savez(env.tmp / "arrays.npz", images=images, labels=np.zeros(len(images), dtype=np.int64))

    return setup


def no_new_run(env: Env, result) -> None:
    assert sorted(p.name for p in (env.home / "runs").iterdir()) == [env.run]


def says(text: str) -> Callable[[Env, object], None]:
    def check(env: Env, result) -> None:
        assert text in result.stderr + result.stdout, result.stderr

    return check


@contextlib.contextmanager
def file_size_limit(limit: int):
    """A full disk for this process: writes past ``limit`` bytes fail with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# --- running a case ------------------------------------------------------------------------------


def make_base_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One home for every case: the 16 px store and a completed run with an anomalies evaluation."""
    home = tmp_path_factory.mktemp("catalogue") / "home"
    write_blob_store(home / "data" / "blobs.h5")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASTROJEPA_HOME", str(home))
        cli = Cli()
        run = cli.json("pretrain", *TINY, "--keep-state")["run_id"]  # resumable cases copy it
        cli("anomalies", run, "--top", "3")
    return home, run


def _invoke(env: Env, case: Case, args: list[str]):
    if "sigint" in env.values:
        process = spawn(env, *args)
        time.sleep(env.values["sigint"])
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        return Outcome(process.returncode, stdout, stderr)
    if case.name == "broken-and-hijacking-plugins":
        site = str(env.tmp / "site")
        process = spawn(env, *args, PYTHONPATH=os.pathsep.join([site, os.environ.get("PYTHONPATH", "")]))
        stdout, stderr = process.communicate(timeout=120)
        return Outcome(process.returncode, stdout, stderr)
    with file_size_limit(env.values["fsize"]) if "fsize" in env.values else contextlib.nullcontext():
        return env.cli(*args, expect=None)


def run_case(case: Case, base_home: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``case`` on a copy of ``base_home`` and check every promise."""
    base, run = base_home
    home = tmp_path / "home"
    _copy_tree(base, home)
    monkeypatch.setenv("ASTROJEPA_HOME", str(home))
    env = Env(home=home, tmp=tmp_path, run=run, cli=Cli())
    before = _snapshot(home)
    if case.setup:
        case.setup(env)
    args = [a.format(run=run, tmp=tmp_path, home=home, **{k: v for k, v in env.values.items() if isinstance(v, str)})
            for a in case.args]
    result = _invoke(env, case, args)
    output = result.stdout + result.stderr
    assert result.exit_code == case.code, output
    assert "Traceback" not in output, output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == (0 if case.code == 0 else 1), output
    after = _snapshot(home)
    assert {path: after.get(path) for path in before} == before
    if case.after:
        case.after(env, result)


def catalogue_tests(cases: list[Case]):
    """A catalogue module's tests: its module-scoped base home, and ``test_bad_input`` over ``cases``.

    Each module writes ``base_home, test_bad_input = catalogue_tests(CASES)``."""

    @pytest.fixture(scope="module")
    def base_home(tmp_path_factory) -> tuple[Path, str]:
        return make_base_home(tmp_path_factory)

    @pytest.mark.parametrize("case", cases, ids=lambda case: case.name)
    def test_bad_input(case: Case, base_home, tmp_path, monkeypatch):
        run_case(case, base_home, tmp_path, monkeypatch)

    return base_home, test_bad_input
