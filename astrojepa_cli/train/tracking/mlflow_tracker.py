"""MLflow: one MLflow run per astrojepa run, in experiment ``$MLFLOW_EXPERIMENT_NAME`` (default ``astrojepa``).

The tracking URI is ``--mlflow-uri``, else ``$MLFLOW_TRACKING_URI``, else a SQLite database
beside the runs folder (``ASTROJEPA_HOME/mlflow.db``; MLflow's folder store is retired). The
config becomes the run's parameters; tags name the astrojepa run. A resumed run continues its
MLflow run (found by tag), so the steps it replays appear twice in MLflow's history.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import urllib.parse

from mlflow.entities import Metric, Param, RunTag  # needs the mlflow extra
from mlflow.tracking import MlflowClient

from astrojepa_cli import runs
from astrojepa_cli.train.tracking import flat_config

RUN_TAG = "astrojepa.run_id"
STATUSES = {"completed": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
# A server that went away should cost seconds, not MLflow's default of 7 retries over minutes;
# and the run's link must not land on stdout, which carries --json. A user's own settings win.
CLIENT_ENVIRONMENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": "15", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


class MlflowTracker:
    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client, self.run_id = client, run_id

    def log(self, step: int, values: dict[str, float]) -> None:
        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(name, value, stamp, step) for name, value in values.items()])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, STATUSES.get(status, "FAILED"))


def tracking_uri(run: runs.Run, config: dict) -> str:
    """Where the run is logged: the flag, the environment, or the SQLite file beside the runs folder."""
    return config.get("mlflow_uri") or os.environ.get("MLFLOW_TRACKING_URI") or _default_uri(run)


def _check_reachable(uri: str) -> None:
    """A server URI must accept a connection: say so plainly, before MLflow's retries and long message."""
    address = urllib.parse.urlsplit(uri)
    if address.scheme not in ("http", "https"):
        return
    try:
        socket.create_connection((address.hostname, address.port or {"http": 80, "https": 443}[address.scheme]),
                                 timeout=10).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {uri} ({exc.strerror or exc})") from None


def _default_uri(run: runs.Run) -> str:
    return f"sqlite:///{(run.dir.parent.parent / 'mlflow.db').resolve()}"


def open(run: runs.Run, config: dict, start_step: int) -> MlflowTracker:
    """The MLflow run of ``run``: a new one, or on resume the one tagged with its id."""
    for name, value in CLIENT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # its own chatter (database set-up) is not ours to print
    uri = tracking_uri(run, config)
    _check_reachable(uri)
    client = MlflowClient(uri)
    experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "astrojepa")
    experiment = client.get_experiment_by_name(experiment_name)
    # Beside the default database, not in whichever folder the run was started from (nothing is logged there yet).
    artifacts = (run.dir.parent.parent / "mlartifacts").resolve().as_uri() if uri == _default_uri(run) else None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name, artifacts)
    earlier = client.search_runs([experiment_id], f"tags.`{RUN_TAG}` = '{run.id}'", max_results=1) if start_step else []
    if earlier:
        run_id = earlier[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        logged = earlier[0].data.params
    else:
        run_id = client.create_run(experiment_id, run_name=run.id, tags={RUN_TAG: run.id}).info.run_id
        logged = {}
    # A parameter keeps its first value (MLflow refuses a change); a resume's longer schedule shows in its tag.
    params = [Param(name, value) for name, value in flat_config(config).items() if name not in logged]
    tags = [RunTag("astrojepa.run_dir", str(run.dir)), RunTag("astrojepa.data", str(config.get("data")))]
    if start_step:
        tags.append(RunTag("astrojepa.resumed_at_step", str(start_step)))
    client.log_batch(run_id, params=params, tags=tags)
    return MlflowTracker(client, run_id)
