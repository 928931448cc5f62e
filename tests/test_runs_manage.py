"""``runs tag`` and ``runs rm`` on real runs; ``runs list`` shows each run's name and latest score; a
run deleted under a writer stays deleted, and a name given to a training run survives its next save."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from astrojepa_cli import runs
from astrojepa_cli.app import app
from astrojepa_cli.errors import UserError
from tests.conftest import TINY_PRETRAIN

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _copy_run(home: Path, run: str, suffix: str, **changes) -> str:
    """A second run folder made from ``run``, with ``changes`` in its manifest."""
    copy = f"{run}-{suffix}"
    shutil.copytree(home / "runs" / run, home / "runs" / copy)
    manifest = {**_manifest(home / "runs" / copy), "run_id": copy, **changes}
    (home / "runs" / copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def run(cli, home, blob_store) -> str:
    return cli.json("pretrain", "--data", blob_store, *FAST)["run_id"]


def test_a_name_stands_for_its_run_and_moves_between_runs(cli, home, run):
    cli("anomalies", run, "--top", "3", "--eval-class", "double")
    other = _copy_run(home, run, "copy")
    assert cli.json("runs", "tag", run, "best") == {"run_id": run, "name": "best", "moved_from": None}
    shown = cli.json("runs", "show", "best")
    assert shown["run_id"] == run and shown["name"] == "best" and "blobs/anomalies-knn" in shown["evaluations"]
    assert "named best" in cli("runs", "show", "best").stderr
    listed = {row["run_id"]: row for row in cli.json("runs", "list")["runs"]}
    assert listed[run]["name"] == "best" and listed[other]["name"] is None

    assert cli.json("runs", "tag", other, "best")["moved_from"] == run
    assert cli.json("runs", "show", "best")["run_id"] == other
    assert "name" not in _manifest(home / "runs" / run)
    for bad in ("9lives", "latest", "a/b", ""):
        result = cli("runs", "tag", run, bad, expect=2)
        assert len(_error_lines(result)) == 1 and "run name" in result.stderr
    assert len(_error_lines(cli("runs", "show", "no-such-name", expect=2))) == 1


def test_runs_list_shows_the_latest_score_of_the_runs_own_encoder(cli, home, run):
    assert cli.json("runs", "list")["runs"][0]["latest_evaluation"] is None
    cli("anomalies", run, "--top", "3", "--eval-class", "double")
    row = cli.json("runs", "list")["runs"][0]
    assert row["latest_evaluation"] == "blobs/anomalies-knn" and row["latest_score"].startswith("ROC-AUC ")
    cli("probe", run)  # records blobs/linear and, after it, its random-weights twin
    row = cli.json("runs", "list")["runs"][0]
    assert row["latest_evaluation"] == "blobs/linear" and row["latest_score"].startswith("balanced accuracy ")
    cli("anomalies", run, "--top", "3", "--eval-class", "double")  # re-recorded, it moves last, within the same second too
    assert cli.json("runs", "list")["runs"][0]["latest_evaluation"] == "blobs/anomalies-knn"


def test_rm_asks_first_and_deletes_the_whole_folder(cli, home, run):
    other = _copy_run(home, run, "copy")
    declined = cli.runner.invoke(app, ["runs", "rm", other], input="n\n")
    assert declined.exit_code == 0 and "nothing deleted" in declined.stderr and other in declined.stderr
    assert (home / "runs" / other).is_dir()
    unanswered = cli.runner.invoke(app, ["runs", "rm", other], input="")
    assert unanswered.exit_code == 2 and len(_error_lines(unanswered)) == 1 and "--yes" in unanswered.stderr
    confirmed = cli.runner.invoke(app, ["runs", "rm", other], input="y\n")
    assert confirmed.exit_code == 0 and not (home / "runs" / other).exists()
    cli("runs", "tag", run, "keep")
    assert cli.json("runs", "rm", "keep", "--yes") == {"deleted": [run]}
    assert sorted((home / "runs").iterdir()) == [] and cli.json("runs", "list") == {"runs": []}
    assert len(_error_lines(cli("runs", "rm", run, "--yes", expect=2))) == 1


def test_a_run_still_training_is_not_deleted_but_may_be_named(cli, home, run):
    alive = _copy_run(home, run, "alive", status="running", pid=os.getpid(), host=platform.node(), name="busy")
    result = cli("runs", "rm", alive, "--yes", expect=2)
    assert len(_error_lines(result)) == 1 and f"run {alive} is still training" in result.stderr
    assert (home / "runs" / alive).is_dir()
    assert cli.json("runs", "tag", run, "busy")["moved_from"] == alive
    assert cli.json("runs", "tag", alive, "other") == {"run_id": alive, "name": "other", "moved_from": None}
    assert _manifest(home / "runs" / alive)["name"] == "other" and _manifest(home / "runs" / run)["name"] == "busy"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = _copy_run(home, run, "dead", status="running", pid=int(gone.stdout), host=platform.node())
    assert cli.json("runs", "rm", dead, "--yes") == {"deleted": [dead]}


def test_the_trainers_next_save_keeps_the_name_given_meanwhile(cli, home, run):
    other = _copy_run(home, run, "copy")
    training = runs.open_run(run, home)  # the trainer's view of the manifest, read before the tag
    cli("runs", "tag", run, "best")
    training.update(steps=3)
    assert _manifest(home / "runs" / run)["name"] == "best" and _manifest(home / "runs" / run)["steps"] == 3
    cli("runs", "tag", other, "best")
    training.update(steps=4)
    assert "name" not in _manifest(home / "runs" / run) and cli.json("runs", "show", "best")["run_id"] == other


def test_an_evaluation_finishing_after_rm_does_not_bring_the_run_back(cli, home, run):
    evaluating = runs.open_run(run, home)
    cli("runs", "rm", run, "--yes")
    with pytest.raises(UserError, match=f"run {run} was deleted while being evaluated"):
        evaluating.add_evaluation("blobs/linear", {"balanced_accuracy": 0.5})
    assert sorted((home / "runs").iterdir()) == []


def _blocked_on_lock(lock_path: Path) -> bool:
    """Whether some flock waits on ``lock_path`` (Linux lists waiters in /proc/locks after '->')."""
    inode = f":{lock_path.stat().st_ino} "
    return any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks to see a waiting lock")
def test_an_evaluation_waiting_on_the_lock_of_a_run_being_deleted_does_not_bring_it_back(home, run):
    deleting, evaluating = runs.open_run(run, home), runs.open_run(run, home)
    outcome: list[BaseException] = []

    def evaluate() -> None:
        try:
            evaluating.add_evaluation("blobs/linear", {"balanced_accuracy": 0.5})
        except UserError as exc:
            outcome.append(exc)

    with deleting.locked("deleting it"):
        waiter = threading.Thread(target=evaluate)
        waiter.start()
        for _ in range(3000):  # until the evaluation waits on the lock (it cannot finish before)
            if _blocked_on_lock(deleting.dir / ".lock"):
                break
            waiter.join(0.01)
        doomed = deleting.dir.with_name(f".deleting-{run}")
        deleting.dir.rename(doomed)  # what delete_run does under the lock
    waiter.join()
    shutil.rmtree(doomed)
    assert [str(exc) for exc in outcome] == [f"run {run} was deleted while being evaluated; the result is not recorded"]
    assert sorted((home / "runs").iterdir()) == []


def test_latest_is_the_newest_completed_run_and_an_unfinished_one_must_be_named(cli, home, run):
    cut = _copy_run(home, run, "cut", status="interrupted", steps=1, total_steps=2)
    shown = cli("runs", "show", "latest", "--json")
    assert json.loads(shown.stdout)["run_id"] == run and f"{cut} (interrupted)" in shown.stderr
    named = cli("export", cut, "--out", str(home / "exported-cut"))
    assert f"warning: run {cut} is interrupted after 1 of 2 steps" in named.stderr
    latest = cli("export", "latest", "--out", str(home / "exported")).stderr
    assert f"'latest' is {run}" in latest and "uses the encoder it saved last" not in latest


def test_a_run_whose_process_is_gone_reads_as_failed_in_list_and_show(cli, home, run):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()  # its pid no longer names a process
    dead = _copy_run(home, run, "dead", status="running", pid=exited.pid, host=platform.node())
    assert {row["run_id"]: row["status"] for row in cli.json("runs", "list")["runs"]}[dead] == "failed"
    lines = [line.rstrip() for line in cli("runs", "show", dead).stderr.splitlines()]
    assert "status     failed, step 2 of 2" in lines
