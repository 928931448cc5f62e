"""The fault catalogue: resuming, the machine (a full disk, a read-only home, Ctrl-C, a NaN loss),
concurrency and third-party plugins.

Each case is a real CLI invocation on real files, run and checked by :mod:`tests.bad_input_catalogue`.
The catalogue as a whole (all three files) is also checked here for its size.
"""

from __future__ import annotations

import json
import os
import textwrap
from typing import Callable

import numpy as np

import registry
from registry.losses import lejepa
from tests import test_bad_input_catalogue_data, test_bad_input_catalogue_runs
from tests.bad_input_catalogue import (catalogue_tests, TINY, Case, Env, npz_setup, other_run_with, replace_file,
                                       says, spawn)
from tests.conftest import TINY_PRETRAIN
from tests.plugin_distribution import install_distribution


@registry.register("loss", "test-nan-at-once")
def _nan_at_once(encoder, **kwargs):
    """Test-only objective: LeJEPA whose loss is NaN from the first step."""
    objective = lejepa(encoder, local_views=0, global_size=16)
    forward = objective.forward

    def nan_loss(images, step, generator):
        terms = forward(images, step, generator)
        return {**terms, "loss": terms["loss"] * float("nan")}

    objective.forward = nan_loss
    return objective


def _torn_metrics(env: Env) -> None:
    copy = env.copy_run("torn")
    replace_file(copy / "metrics.jsonl", (env.run_dir / "metrics.jsonl").read_bytes() + b'{"step": 3, "lo')


def _kill_between_writes(env: Env) -> None:
    """What a kill during a checkpoint leaves: a half-written temporary file, and a state.json from
    another step (the layout before the state moved into the tensors' metadata wrote it second)."""
    copy = env.copy_run("killed-mid-save")
    (copy / ".state.safetensors.x1y2.tmp").write_bytes((copy / "state.safetensors").read_bytes()[:1000])
    state = json.loads((copy / "state.json").read_text())
    replace_file(copy / "state.json", json.dumps({**state, "step": 1}).encode())


def _completed_without_state(env: Env) -> None:
    """A run that completed without --keep-state: its optimiser state was dropped."""
    env.values["stateless"] = env.cli.json("pretrain", *TINY)["run_id"]


def _owned_by_live_process(env: Env) -> None:
    copy = env.copy_run("busy")
    manifest = json.loads((copy / "manifest.json").read_text())
    replace_file(copy / "manifest.json", json.dumps({**manifest, "status": "running", "pid": os.getppid(),
                                                     "host": os.uname().nodename}).encode())


def _sigkilled_run(env: Env) -> None:
    """A real training process killed with SIGKILL after its first (time-interval) checkpoint."""
    process = spawn(env, "pretrain", "--data", "blobs", *TINY_PRETRAIN, "--max-steps", "8",
                    ASTROJEPA_CHECKPOINT_SECONDS="0")
    env.values["killed"] = other_run_with(env, "state.safetensors", process)
    process.kill()
    process.wait()


def _probe_during_training(env: Env) -> None:
    process = spawn(env, "pretrain", "--data", "blobs", *TINY_PRETRAIN, "--max-steps", "10",
                    ASTROJEPA_CHECKPOINT_SECONDS="0")
    env.values.update(training=other_run_with(env, "encoder.safetensors", process), process=process)


def _broken_plugins(env: Env) -> None:
    install_distribution(env.tmp / "site", "hijack", textwrap.dedent('''
        from registry import register
        from registry.encoders import Encoder

        @register("encoder", "vit-t")
        def fake(in_chans: int = 3) -> Encoder:
            """Not the real ViT-Tiny."""
            return Encoder("resnet18", in_chans=in_chans)
    '''), {"hijack": "hijack", "broken": "no_such_module"})


def _resumed_to(name: str, steps: int) -> Callable[[Env, object], None]:
    def check(env: Env, result) -> None:
        run_dir = env.home / "runs" / env.values.get(name, name)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["steps"] == steps
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [row["step"] for row in rows] == list(range(1, steps + 1))

    return check


def _failed_run_recorded(env: Env, result) -> None:
    assert "disk full" in result.stderr
    failed = [json.loads(p.read_text()) for p in (env.home / "runs").glob("*/manifest.json") if p.parent.name != env.run]
    assert [m["status"] for m in failed] == ["failed"] and "failure" in failed[0]
    latest = env.cli("runs", "show", "latest", "--json")
    assert json.loads(latest.stdout)["run_id"] == env.run


def _evaluation_kept(env: Env, result) -> None:
    process = env.values["process"]
    assert process.wait(timeout=120) == 0, process.communicate()
    manifest = json.loads((env.home / "runs" / env.values["training"] / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["result"]["final_loss"] is not None
    recorded = manifest["evaluations"]["blobs/linear"]
    assert recorded["run_status"] in ("running", "completed") and 1 <= recorded["encoder_step"] <= manifest["steps"]


def _plugins_isolated(env: Env, result) -> None:
    listing = json.loads(result.stdout)
    assert set(listing["broken"]) == {"hijack", "broken"}
    assert listing["encoder"]["vit-t"].startswith("ViT-Tiny")
    assert result.stderr.count("warning: plugin") == 2


def _read_only_root(env: Env) -> None:
    """A home the process cannot write: a read-only folder, or (as root, who may write anywhere) /sys."""
    if os.geteuid() == 0:
        env.values["readonly"] = "/sys/astrojepa-home"
    else:
        folder = env.tmp / "readonly"
        folder.mkdir(mode=0o555)
        env.values["readonly"] = str(folder)


CASES = [
    # resuming
    Case("resume-completed-run", ("pretrain", "--resume", "{run}"), after=says("already completed")),
    Case("resume-with-conflicting-flag", ("pretrain", "--resume", "{run}", "--lr", "1")),
    Case("resume-completed-run-without-state", ("pretrain", "--resume", "{stateless}", "--max-steps", "3"),
         setup=_completed_without_state, after=says("dropped its optimiser state")),
    Case("resume-run-still-training", ("pretrain", "--resume", "busy"), setup=_owned_by_live_process, invented=True),
    Case("resume-torn-metrics", ("pretrain", "--resume", "torn", "--max-steps", "3", "--quiet"), code=0,
         setup=_torn_metrics, after=_resumed_to("torn", 3)),
    Case("resume-after-kill-mid-save", ("pretrain", "--resume", "killed-mid-save", "--max-steps", "3", "--quiet"),
         code=0, setup=_kill_between_writes, after=_resumed_to("killed-mid-save", 3)),
    Case("resume-after-sigkill", ("pretrain", "--resume", "{killed}", "--quiet"), code=0, setup=_sigkilled_run,
         after=_resumed_to("killed", 8)),
    Case("nan-loss-before-any-checkpoint", ("pretrain", "--data", "blobs", "--loss", "test-nan-at-once", "--arch",
                                            "vit-t", "--img-size", "16", "--patch-size", "4", "--batch-size", "16",
                                            "--log-every", "1", "--max-steps", "3", "--quiet"),
         code=3, after=says("no checkpoint had been saved yet")),
    # the machine
    Case("disk-full-at-first-checkpoint", ("pretrain", *TINY), setup=lambda env: env.values.update(fsize=4 << 20),
         after=_failed_run_recorded),
    Case("read-only-home", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w", "--root", "{readonly}"),
         setup=lambda env: (npz_setup(np.zeros((8, 16, 16), dtype=np.uint8))(env), _read_only_root(env))),
    Case("ctrl-c-during-start-up", ("plugins", "--json"), code=130, setup=lambda env: env.values.update(sigint=0.3),
         after=says("interrupted")),
    Case("probe-while-training", ("probe", "{training}", "--json"), code=0, setup=_probe_during_training,
         after=_evaluation_kept),
    Case("broken-and-hijacking-plugins", ("plugins", "--json"), code=0, setup=_broken_plugins,
         after=_plugins_isolated),
]


def test_catalogue_holds_at_least_forty_cases_ten_invented():
    catalogue = [*test_bad_input_catalogue_data.CASES, *test_bad_input_catalogue_runs.CASES, *CASES]
    assert len(catalogue) >= 40 and sum(case.invented for case in catalogue) >= 10
    assert len({case.name for case in catalogue}) == len(catalogue)


base_home, test_bad_input = catalogue_tests(CASES)
