"""``pretrain --log``: TensorBoard, MLflow and W&B get the rows of metrics.jsonl, the config and the epoch
summaries; a dashboard that is missing or down costs one warning line and never stops training."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from astrojepa_cli import runs
from astrojepa_cli.train.tracking import open_trackers
from tests.conftest import TINY_PRETRAIN

# Blobs in batches of 16: a few steps make an epoch; --max-steps sets the length.
TRAIN = ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--epochs", "20")
MLFLOW_STARTUP_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rows(run_dir: Path) -> list[dict]:
    return runs.read_metrics(run_dir / "metrics.jsonl")


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def _spawn(home: Path, *args: str) -> subprocess.Popen:
    environment = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "astrojepa_cli", *args], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_rows(home: Path, count: int, process: subprocess.Popen) -> Path:
    """The folder of the run ``process`` trains, once its metrics.jsonl has ``count`` rows."""
    def ready() -> list[Path]:
        return [path.parent for path in (home / "runs").glob("*/metrics.jsonl") if len(_rows(path.parent)) >= count]

    _wait_until(ready, process, f"fewer than {count} metric rows")
    return ready()[0]


def _wait_until(condition, process: subprocess.Popen, message: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"training ended early: {message}"
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory) -> subprocess.Popen:
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite store, one for the module (its start takes
    tens of seconds); ``.url`` is its address. The last test stops it mid-run."""
    folder = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = open(folder / "server.log", "w")
    # The job runner (huey consumers) is for MLflow's GenAI jobs: not needed, and slow to start.
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--default-artifact-root",
         str(folder / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    process.url, process.store = f"http://127.0.0.1:{port}", folder / "mlflow.db"
    deadline = time.monotonic() + MLFLOW_STARTUP_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{process.url}/health", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert process.poll() is None, (folder / "server.log").read_text()
        assert time.monotonic() < deadline, f"mlflow server not up after {MLFLOW_STARTUP_SECONDS} s"
        time.sleep(0.5)
    yield process
    _stop(process)
    log.close()


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and the workers it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _mlflow_runs(client: MlflowClient, run_id: str) -> list:
    """The MLflow runs tagged with astrojepa run ``run_id``."""
    experiment = client.get_experiment_by_name("astrojepa")
    return client.search_runs([experiment.experiment_id], f"tags.`astrojepa.run_id` = '{run_id}'") if experiment else []


def _mlflow_run(client: MlflowClient, run_id: str):
    [found] = _mlflow_runs(client, run_id)
    return found


def _history(client: MlflowClient, mlflow_run_id: str, name: str) -> dict[int, float]:
    return {metric.step: metric.value for metric in client.get_metric_history(mlflow_run_id, name)}


def _logged_losses(client: MlflowClient, run_id: str) -> dict[int, float]:
    found = _mlflow_runs(client, run_id)
    return _history(client, found[0].info.run_id, "loss") if found else {}


def test_tensorboard_event_files_hold_the_metrics_and_epoch_monitors(cli, blob_store, home):
    """Killed after a checkpoint and resumed: the events match metrics.jsonl, each step once (the replayed
    steps' first events are purged)."""
    process = _spawn(home, *TRAIN, "--max-steps", "12", "--save-every", "3", "--log", "tensorboard")
    run_dir = _wait_for_rows(home, 5, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert cli.json("pretrain", "--resume", run_dir.name, "--quiet")["status"] == "completed"
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(run_dir))
    events.Reload()
    rows = _rows(run_dir)
    assert [row["step"] for row in rows] == list(range(1, 13))
    for name in ("loss", "lr", "images_per_second"):
        # TensorBoard keeps scalars as 32-bit floats.
        assert ([(event.step, event.value) for event in events.Scalars(name)]
                == [(row["step"], float(np.float32(row[name]))) for row in rows]), name
    epochs = _manifest(run_dir)["epochs"]
    for name in ("effective_rank", "online_probe_accuracy", "std_mean"):
        assert ([(event.step, event.value) for event in events.Scalars(f"epoch/{name}")]
                == [(summary["step"], float(np.float32(summary[name]))) for summary in epochs]), name
    assert "config/text_summary" in events.Tags()["tensors"]

    # A resume may change the dashboards; it checks their names first.
    refused = cli("pretrain", "--resume", run_dir.name, "--max-steps", "18", "--log", "neptune", expect=2)
    assert "unknown tracker" in refused.stderr


def test_mlflow_server_gets_the_metrics_config_and_epoch_monitors(cli, blob_store, home, mlflow_server):
    result = cli.json(*TRAIN, "--max-steps", "6", "--keep-state", "--log", "mlflow", "--mlflow-uri", mlflow_server.url)
    run_dir = Path(result["run_dir"])
    client = MlflowClient(mlflow_server.url)
    logged = _mlflow_run(client, result["run_id"])
    rows = _rows(run_dir)
    assert logged.info.status == "FINISHED" and logged.info.run_name == result["run_id"]
    for name in ("loss", "sigreg", "lr", "weight_decay", "images_per_second", "epoch"):
        assert _history(client, logged.info.run_id, name) == {row["step"]: row[name] for row in rows}, name
    epochs = _manifest(run_dir)["epochs"]
    assert epochs
    for name in ("effective_rank", "online_probe_accuracy"):
        assert (_history(client, logged.info.run_id, f"epoch/{name}")
                == {summary["step"]: summary[name] for summary in epochs}), name
    config = _manifest(run_dir)["config"]
    params = logged.data.params
    assert set(params) == set(config)
    assert (params["arch"], params["lr"], params["batch_size"]) == ("vit-t", str(config["lr"]), "16")
    assert (params["log"], params["mlflow_uri"]) == ("mlflow", mlflow_server.url)
    assert logged.data.tags["astrojepa.run_dir"] == str(run_dir)

    # The resumed run continues the same MLflow run.
    resumed = cli.json("pretrain", "--resume", result["run_id"], "--max-steps", "12", "--quiet")
    assert resumed["status"] == "completed"
    continued = _mlflow_run(client, result["run_id"])
    assert continued.info.run_id == logged.info.run_id and continued.info.status == "FINISHED"
    assert continued.data.tags["astrojepa.resumed_at_step"] == "6"
    assert _history(client, logged.info.run_id, "loss") == {row["step"]: row["loss"] for row in _rows(run_dir)}
    assert (_history(client, logged.info.run_id, "epoch/effective_rank")
            == {summary["step"]: summary["effective_rank"] for summary in _manifest(run_dir)["epochs"]})


def test_missing_extra_and_unreachable_server_cost_one_warning_each(blob_store, home, tmp_path):
    """No tensorboard package and nothing listening at the MLflow URI: one warning line each, and a completed run."""
    blocked = tmp_path / "without-tensorboard"
    (blocked / "tensorboard").mkdir(parents=True)
    (blocked / "tensorboard" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'tensorboard'\", name='tensorboard')\n")
    environment = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([str(blocked), str(Path(__file__).resolve().parents[1])])}
    closed_port = _free_port()
    finished = subprocess.run(
        [sys.executable, "-m", "astrojepa_cli", *TRAIN, "--max-steps", "3", "--log", "tensorboard", "--log", "mlflow",
         "--mlflow-uri", f"http://127.0.0.1:{closed_port}", "--json"],
        env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["status"] == "completed"
    warnings = _warnings(finished.stderr)
    assert len(warnings) == 2, finished.stderr
    assert any(line.startswith("warning: --log tensorboard needs the tensorboard extra") for line in warnings)
    assert any(line.startswith("warning: --log mlflow: could not start (ConnectionError: nothing answers at")
               for line in warnings), warnings
    assert "Traceback" not in finished.stderr


def test_only_rank_zero_opens_trackers(tmp_path):
    run = runs.Run(tmp_path / "run", {})
    (tmp_path / "run").mkdir()
    assert open_trackers(("tensorboard",), run, {}, 0, is_main=False).threads == {}
    assert not list((tmp_path / "run").iterdir())


def test_wandb_offline_writes_its_run_into_the_run_folder(cli, blob_store, home, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    result = cli.json(*TRAIN, "--max-steps", "2", "--log", "wandb")
    run_dir = Path(result["run_dir"])
    assert result["status"] == "completed"
    [offline] = (run_dir / "wandb").glob(f"offline-run-*-{result['run_id']}")
    assert (offline / f"run-{result['run_id']}.wandb").stat().st_size > 0


def test_server_gone_mid_run_costs_one_warning_and_training_goes_on(blob_store, home, mlflow_server):
    """Last: it stops the module's server while a long run logs to it, then stops the run."""
    process = _spawn(home, *TRAIN, "--epochs", "1000", "--max-steps", "100000", "--log", "mlflow",
                     "--mlflow-uri", mlflow_server.url)
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)
    reader.start()
    run_dir = _wait_for_rows(home, 1, process)
    server = MlflowClient(mlflow_server.url)
    _wait_until(lambda: len(_logged_losses(server, run_dir.name)) >= 2, process, "no losses on the server")
    _stop(mlflow_server)
    _wait_until(lambda: _warnings("".join(stderr)), process, "no warning once the server stopped")
    rows_then = len(_rows(run_dir))
    _wait_until(lambda: len(_rows(run_dir)) >= rows_then + 3, process, "training stopped with the server")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130
    reader.join(timeout=30)
    warnings = _warnings("".join(stderr))
    assert len(warnings) == 1 and warnings[0].startswith("warning: --log mlflow: could not log"), stderr
    # What the server took before it went is what metrics.jsonl holds.
    stored = _logged_losses(MlflowClient(f"sqlite:///{mlflow_server.store}"), run_dir.name)
    assert 2 <= len(stored) <= rows_then
    assert stored.items() <= {row["step"]: row["loss"] for row in _rows(run_dir)}.items()

