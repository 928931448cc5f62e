"""The bad-input and fault catalogue: every case is a real CLI invocation on real files.

Each case promises:
- its exit code (2 for bad input, 0 where the right answer is to carry on, e.g. a torn log);
- exactly one ``error:`` line when it fails (none when it succeeds), and never a traceback;
- every store and run that existed before the case is byte-identical afterwards.

Every case starts from a copy of one home: a 16 px store and a completed two-step
run with an anomalies evaluation. Large files are hard-linked into the copy
(astrojepa replaces files by renaming, so a write can never reach the original)
and their digests are cached by inode and modification time.

To add a case, append a ``Case`` to ``CASES``: the arguments (``{run}``,
``{tmp}`` and ``{home}`` are filled in), the exit code, and optionally a
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
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import registry
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store
from tests.plugin_distribution import install_distribution
from registry.losses import lejepa

LINKED_BYTES = 1 << 20
SCRIPT = Path(sys.executable).parent / "astrojepa"
TINY_SPEC = {"model_name": "vit_tiny_patch16_224", "img_size": 16, "patch_size": 4, "in_chans": 1,
             "class_token": False, "global_pool": "avg", "fc_norm": False, "dynamic_img_size": True,
             "drop_path_rate": 0.0}


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
        _replace(copy / "manifest.json", json.dumps({**manifest, "run_id": name}).encode())
        return copy


@dataclass
class Case:
    name: str
    args: tuple[str, ...]
    code: int = 2
    setup: Callable[[Env], None] | None = None
    after: Callable[[Env, object], None] | None = None
    invented: bool = False  # not among the failures first reported; added with its fix


def _replace(path: Path, data: bytes) -> None:
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


def _spawn(env: Env, *args: str, **extra_env: str) -> subprocess.Popen:
    environment = {**os.environ, "ASTROJEPA_HOME": str(env.home), "OMP_NUM_THREADS": "1", **extra_env}
    return subprocess.Popen([*_command(), *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _other_run_with(env: Env, file_name: str, process: subprocess.Popen, timeout: float = 90) -> str:
    """The id of the run, other than the base run, in which ``process`` has written ``file_name``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p.parent.name for p in (env.home / "runs").glob(f"*/{file_name}") if p.parent.name != env.run]
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {file_name} after {timeout} s"
        time.sleep(0.05)


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


@dataclass
class Outcome:
    """What a subprocess case returns, shaped like click's Result."""

    exit_code: int
    stdout: str
    stderr: str


# --- inputs the cases make ------------------------------------------------------------------------


def _store_with(env: Env, name: str, edit: Callable[[h5py.File], None]) -> None:
    """A copy of the base store with one edit, written with h5py as a foreign tool would."""
    target = env.home / "data" / f"{name}.h5"
    shutil.copy(env.home / "data" / "blobs.h5", target)
    with h5py.File(target, "r+") as handle:
        edit(handle)


def _float_pixels(value: float) -> Callable[[h5py.File], None]:
    def edit(handle: h5py.File) -> None:
        pixels = handle["images"][:].astype(np.float32)
        pixels[5, 3, 3, 0] = value
        del handle["images"]
        handle.create_dataset("images", data=pixels)

    return edit


def _drop_attrs(handle: h5py.File) -> None:
    for key in list(handle.attrs):
        del handle.attrs[key]


def _flatten_images(handle: h5py.File) -> None:
    pixels = handle["images"][:, :, :, 0]
    del handle["images"]
    handle.create_dataset("images", data=pixels)


def _tamper_label(handle: h5py.File) -> None:
    handle["labels"][0] = (handle["labels"][0] + 1) % 3


def _file(relative: str, content: bytes | str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        path = env.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return setup


def _npz(images: np.ndarray) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        np.savez(env.tmp / "arrays.npz", images=images, labels=np.zeros(len(images), dtype=np.int64))

    return setup


def _truncated_npz(env: Env) -> None:
    _npz(np.zeros((8, 16, 16), dtype=np.uint8))(env)
    data = (env.tmp / "arrays.npz").read_bytes()
    (env.tmp / "arrays.npz").write_bytes(data[: len(data) // 2])


def _catalog_without_images(env: Env) -> None:
    folder = env.tmp / "cat"
    folder.mkdir()
    (folder / "catalog.csv").write_text("file,label\nmissing-1.png,a\nmissing-2.png,b\n")


def _hostile_run(metadata: dict[str, str], tensors: dict[str, torch.Tensor] | None = None) -> Callable[[Env], None]:
    """A run handed over by someone else: a copied manifest with an encoder file of their making."""

    def setup(env: Env) -> None:
        copy = env.copy_run("handed-over")
        (copy / "encoder.safetensors").unlink()
        save_file(tensors or {"weight": torch.zeros(2)}, str(copy / "encoder.safetensors"),
                  metadata={"format": "astrojepa-encoder/1", **metadata})

    return setup


def _spec(**changes) -> dict[str, str]:
    return {"timm_spec": json.dumps({**TINY_SPEC, **changes})}


def _nan_weights(env: Env) -> None:
    tensors = {k: torch.full_like(v, float("nan")) for k, v in load_file(str(env.run_dir / "encoder.safetensors")).items()}
    _hostile_run(_spec(), tensors)(env)


def _garbage_encoder(env: Env) -> None:
    copy = env.copy_run("handed-over")
    _replace(copy / "encoder.safetensors", b"\x00garbage" * 100)


def _corrupt_manifest(content: str) -> Callable[[Env], None]:
    def setup(env: Env) -> None:
        folder = env.home / "runs" / "zz-broken"
        folder.mkdir()
        (folder / "manifest.json").write_text(content)

    return setup


def _delete_anomalies_json(env: Env) -> None:
    copy = env.copy_run("no-json")
    for path in copy.rglob("anomalies.json"):
        path.unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    for record in manifest["evaluations"].values():
        if "json" in record:
            record["json"] = str(copy / record["json"].split(f"/runs/{env.run}/", 1)[1])
    _replace(copy / "manifest.json", json.dumps(manifest).encode())


def _torn_metrics(env: Env) -> None:
    copy = env.copy_run("torn")
    _replace(copy / "metrics.jsonl", (env.run_dir / "metrics.jsonl").read_bytes() + b'{"step": 3, "lo')


def _kill_between_writes(env: Env) -> None:
    """What a kill during a checkpoint leaves: a half-written temporary file, and a state.json from
    another step (the layout before the state moved into the tensors' metadata wrote it second)."""
    copy = env.copy_run("killed-mid-save")
    (copy / ".state.safetensors.x1y2.tmp").write_bytes((copy / "state.safetensors").read_bytes()[:1000])
    state = json.loads((copy / "state.json").read_text())
    _replace(copy / "state.json", json.dumps({**state, "step": 1}).encode())


def _owned_by_live_process(env: Env) -> None:
    copy = env.copy_run("busy")
    manifest = json.loads((copy / "manifest.json").read_text())
    _replace(copy / "manifest.json", json.dumps({**manifest, "status": "running", "pid": os.getppid(),
                                                 "host": os.uname().nodename}).encode())


def _sigkilled_run(env: Env) -> None:
    """A real training process killed with SIGKILL after its first (time-interval) checkpoint."""
    process = _spawn(env, "pretrain", "--data", "blobs", *TINY_PRETRAIN, "--max-steps", "8",
                     ASTROJEPA_CHECKPOINT_SECONDS="0")
    env.values["killed"] = _other_run_with(env, "state.safetensors", process)
    process.kill()
    process.wait()


def _probe_during_training(env: Env) -> None:
    process = _spawn(env, "pretrain", "--data", "blobs", *TINY_PRETRAIN, "--max-steps", "10",
                     ASTROJEPA_CHECKPOINT_SECONDS="0")
    env.values.update(training=_other_run_with(env, "encoder.safetensors", process), process=process)


def _broken_plugins(env: Env) -> None:
    install_distribution(env.tmp / "site", "hijack", textwrap.dedent('''
        from registry import register
        from registry.encoders import Encoder

        @register("encoder", "vit-t")
        def fake(in_chans: int = 3) -> Encoder:
            """Not the real ViT-Tiny."""
            return Encoder("resnet18", in_chans=in_chans)
    '''), {"hijack": "hijack", "broken": "no_such_module"})


@contextlib.contextmanager
def _file_size_limit(limit: int):
    """A full disk for this process: writes past ``limit`` bytes fail with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


# --- extra promises -----------------------------------------------------------------------------------


def _no_new_run(env: Env, result) -> None:
    assert sorted(p.name for p in (env.home / "runs").iterdir()) == [env.run]


def _says(text: str) -> Callable[[Env, object], None]:
    def check(env: Env, result) -> None:
        assert text in result.stderr + result.stdout, result.stderr

    return check


def _resumed_to(name: str, steps: int) -> Callable[[Env, object], None]:
    def check(env: Env, result) -> None:
        run_dir = env.home / "runs" / env.values.get(name, name)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["steps"] == steps
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [row["step"] for row in rows] == list(range(1, steps + 1))

    return check


def _listed_despite_broken_manifest(env: Env, result) -> None:
    assert [row["run_id"] for row in json.loads(result.stdout)["runs"]] == [env.run]
    assert "warning: skipping run zz-broken" in result.stderr


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


# --- the catalogue ------------------------------------------------------------------------------------

TINY = ("--data", "blobs", *TINY_PRETRAIN, "--max-steps", "2")
CASES = [
    # stores and imports
    Case("missing-store", ("pretrain", "--data", "nope", *TINY_PRETRAIN)),
    Case("truncated-store", ("fetch-data", "verify", "torn"),
         setup=lambda env: (env.home / "data" / "torn.h5").write_bytes((env.home / "data" / "blobs.h5").read_bytes()[:2000])),
    Case("store-not-hdf5", ("pretrain", "--data", "text", *TINY_PRETRAIN),
         setup=lambda env: (env.home / "data" / "text.h5").write_text("not a store")),
    Case("store-missing-attributes", ("probe", "{run}", "--data", "bare"),
         setup=lambda env: _store_with(env, "bare", _drop_attrs)),
    Case("store-nan-pixels", ("probe", "{run}", "--data", "nanpix"),
         setup=lambda env: _store_with(env, "nanpix", _float_pixels(float("nan")))),
    Case("store-inf-pixels", ("anomalies", "{run}", "--data", "infpix"),
         setup=lambda env: _store_with(env, "infpix", _float_pixels(float("inf")))),
    Case("store-images-without-channels", ("embed", "{run}", "--data", "flat"),
         setup=lambda env: _store_with(env, "flat", _flatten_images), invented=True),
    Case("store-tampered", ("fetch-data", "verify", "tampered"),
         setup=lambda env: _store_with(env, "tampered", _tamper_label)),
    Case("empty-folder", ("fetch-data", "folder", "{tmp}/empty", "--name", "e"),
         setup=lambda env: (env.tmp / "empty").mkdir()),
    Case("catalog-rows-without-images", ("fetch-data", "folder", "{tmp}/cat", "--name", "c"),
         setup=_catalog_without_images),
    Case("npz-wrong-shape", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w"),
         setup=_npz(np.zeros(5, dtype=np.uint8))),
    Case("npz-nan-pixels", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w"),
         setup=_npz(np.full((4, 16, 16), np.nan, dtype=np.float32))),
    Case("npz-truncated", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w"), setup=_truncated_npz),
    Case("verify-without-name", ("fetch-data", "verify")),
    Case("batch-larger-than-data", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--batch-size", "512"),
         after=_no_new_run),
    # configs and flags
    Case("config-wrong-type", ("pretrain", "--config", "{tmp}/c.json", "--data", "blobs"),
         setup=_file("c.json", '{"lr": "fast"}'), after=_no_new_run),
    Case("config-float-epochs", ("pretrain", "--config", "{tmp}/c.toml", "--data", "blobs"),
         setup=_file("c.toml", "epochs = 1.5\n"), after=_no_new_run),
    Case("config-bool-for-int", ("pretrain", "--config", "{tmp}/c.json", "--data", "blobs"),
         setup=_file("c.json", '{"seed": true}'), invented=True),
    Case("config-three-scale-numbers", ("pretrain", "--config", "{tmp}/c.json", "--data", "blobs"),
         setup=_file("c.json", '{"global_scale": [0.1, 0.5, 1.0]}'), invented=True),
    Case("config-unknown-key", ("pretrain", "--config", "{tmp}/c.json"), setup=_file("c.json", '{"learning_rate": 1}')),
    Case("config-unparsable", ("pretrain", "--config", "{tmp}/c.toml"), setup=_file("c.toml", "epochs = = 3")),
    Case("config-missing", ("pretrain", "--config", "{tmp}/none.toml")),
    Case("patch-does-not-divide-image", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--patch-size", "5"),
         after=_no_new_run),
    Case("patch-size-zero", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--patch-size", "0"), after=_no_new_run),
    Case("patch-does-not-divide-view", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--global-size", "14"),
         after=_no_new_run, invented=True),
    Case("zero-epochs", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--epochs", "0")),
    Case("unknown-arch", ("pretrain", "--data", "blobs", "--arch", "vit-xxl")),
    Case("unknown-loss", ("pretrain", "--data", "blobs", "--loss", "lejepa2")),
    Case("unknown-masker", ("pretrain", "--data", "blobs", "--loss", "ijepa", "--masker", "nope")),
    # devices
    Case("device-foo-pretrain", ("pretrain", *TINY, "--device", "foo"), after=_no_new_run),
    Case("device-foo-embed", ("embed", "{run}", "--device", "foo")),
    Case("device-foo-probe", ("probe", "{run}", "--device", "foo")),
    Case("device-foo-anomalies", ("anomalies", "{run}", "--device", "foo")),
    Case("device-foo-plot", ("plot", "{run}", "--device", "foo")),
    Case("device-foo-similar", ("similar", "{run}", "--id", "obj1", "--device", "foo")),
    Case("device-malformed-index", ("embed", "{run}", "--device", "cuda:x"), invented=True),
    # runs and run files
    Case("missing-run", ("probe", "no-such-run")),
    Case("manifest-not-json", ("runs", "show", "zz-broken"), setup=_corrupt_manifest("{not json")),
    Case("manifest-a-list", ("runs", "show", "zz-broken"), setup=_corrupt_manifest("[1, 2]"), invented=True),
    Case("one-bad-manifest-in-runs-list", ("runs", "list", "--json"), code=0, setup=_corrupt_manifest("{"),
         after=_listed_despite_broken_manifest),
    Case("hostile-checkpoint-path", ("probe", "handed-over"), setup=_hostile_run(_spec(checkpoint_path="/tmp/x.pth"))),
    Case("hostile-pretrained-cfg-overlay", ("embed", "handed-over"),
         setup=_hostile_run(_spec(pretrained_cfg_overlay="{'file': 'x.pth'}"))),
    Case("hostile-hub-name", ("embed", "handed-over"), setup=_hostile_run(_spec(model_name="hf-hub:evil/model"))),
    Case("timm-spec-nested-value", ("embed", "handed-over"), setup=_hostile_run(_spec(img_size={"x": 1})),
         invented=True),
    Case("timm-spec-not-json", ("embed", "handed-over"), setup=_hostile_run({"timm_spec": "{model"}), invented=True),
    Case("state-dict-mismatch", ("embed", "handed-over"), setup=_hostile_run(_spec())),
    Case("encoder-not-safetensors", ("embed", "handed-over"), setup=_garbage_encoder),
    Case("nan-weights", ("probe", "handed-over"), setup=_nan_weights, after=_says("NaN"), invented=True),
    Case("plot-with-deleted-anomalies-json", ("plot", "no-json"), code=0, setup=_delete_anomalies_json),
    Case("anomalies-k-zero", ("anomalies", "{run}", "--k", "0")),
    Case("anomalies-top-zero", ("anomalies", "{run}", "--top", "0")),
    Case("export-onto-existing-file", ("export", "{run}", "--out", "{tmp}/file"), setup=_file("file", "keep me")),
    Case("export-unknown-format", ("export", "{run}", "--out", "{tmp}/x", "--format", "onnx")),
    Case("embed-unknown-format", ("embed", "{run}", "--format", "bogus")),
    Case("probe-shots-not-numbers", ("probe", "{run}", "--shots", "a,b")),
    Case("similar-unknown-id", ("similar", "{run}", "--id", "no-such-object")),
    # resuming
    Case("resume-completed-run", ("pretrain", "--resume", "{run}"), after=_says("already completed")),
    Case("resume-with-conflicting-flag", ("pretrain", "--resume", "{run}", "--lr", "1")),
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
         code=3, after=_says("no checkpoint had been saved yet")),
    # the machine
    Case("disk-full-at-first-checkpoint", ("pretrain", *TINY), setup=lambda env: env.values.update(fsize=4 << 20),
         after=_failed_run_recorded),
    Case("read-only-home", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w", "--root", "{readonly}"),
         setup=lambda env: (_npz(np.zeros((8, 16, 16), dtype=np.uint8))(env), _read_only_root(env))),
    Case("ctrl-c-during-start-up", ("runs", "list"), code=130, setup=lambda env: env.values.update(sigint=0.3),
         after=_says("interrupted")),
    Case("probe-while-training", ("probe", "{training}", "--json"), code=0, setup=_probe_during_training,
         after=_evaluation_kept),
    Case("broken-and-hijacking-plugins", ("plugins", "--json"), code=0, setup=_broken_plugins,
         after=_plugins_isolated),
]


def _read_only_root(env: Env) -> None:
    """A home the process cannot write: a read-only folder, or (as root, who may write anywhere) /sys."""
    if os.geteuid() == 0:
        env.values["readonly"] = "/sys/astrojepa-home"
    else:
        folder = env.tmp / "readonly"
        folder.mkdir(mode=0o555)
        env.values["readonly"] = str(folder)


@pytest.fixture(scope="module")
def base_home(tmp_path_factory) -> tuple[Path, str]:
    """One home for every case: the 16 px store and a completed run with an anomalies evaluation."""
    home = tmp_path_factory.mktemp("catalogue") / "home"
    write_blob_store(home / "data" / "blobs.h5")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASTROJEPA_HOME", str(home))
        cli = Cli()
        run = cli.json("pretrain", *TINY)["run_id"]
        cli("anomalies", run, "--top", "3")
    return home, run


def _invoke(env: Env, case: Case, args: list[str]):
    if "sigint" in env.values:
        process = _spawn(env, *args)
        time.sleep(env.values["sigint"])
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        return Outcome(process.returncode, stdout, stderr)
    if case.name == "broken-and-hijacking-plugins":
        site = str(env.tmp / "site")
        process = _spawn(env, *args, PYTHONPATH=os.pathsep.join([site, os.environ.get("PYTHONPATH", "")]))
        stdout, stderr = process.communicate(timeout=120)
        return Outcome(process.returncode, stdout, stderr)
    with _file_size_limit(env.values["fsize"]) if "fsize" in env.values else contextlib.nullcontext():
        return env.cli(*args, expect=None)


def test_catalogue_holds_at_least_forty_cases_ten_invented():
    assert len(CASES) >= 40 and sum(case.invented for case in CASES) >= 10
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input(case: Case, base_home, tmp_path, monkeypatch):
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
