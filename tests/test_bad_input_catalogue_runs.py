"""The bad-input catalogue, run folders: missing and corrupt manifests, hostile or broken encoder
files, deleted evaluation files, and bad options of the commands that read a run.

Each case is a real CLI invocation on real files, run and checked by :mod:`tests.bad_input_catalogue`.
"""

from __future__ import annotations

import importlib.util
import json
import socket
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.bad_input_catalogue import catalogue_tests, Case, Env, file_setup, replace_file, says

TINY_SPEC = {"model_name": "vit_tiny_patch16_224", "img_size": 16, "patch_size": 4, "in_chans": 1,
             "class_token": False, "global_pool": "avg", "fc_norm": False, "dynamic_img_size": True,
             "drop_path_rate": 0.0}


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
    replace_file(copy / "encoder.safetensors", b"\x00garbage" * 100)


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
    replace_file(copy / "manifest.json", json.dumps(manifest).encode())


def _run_without_encoder(env: Env) -> None:
    (env.copy_run("no-encoder") / "encoder.safetensors").unlink()


def _without_umap(env: Env) -> None:
    if importlib.util.find_spec("umap") is not None:
        pytest.skip("umap-learn is installed")


def _busy_port(env: Env) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    env.values.update(port=str(listener.getsockname()[1]), listener=listener)


def _port_named_and_freed(env: Env, result) -> None:
    env.values["listener"].close()
    assert f"port {env.values['port']} on 127.0.0.1 is not free" in result.stderr, result.stderr


def _listed_despite_broken_manifest(env: Env, result) -> None:
    assert [row["run_id"] for row in json.loads(result.stdout)["runs"]] == [env.run]
    assert "warning: skipping run zz-broken" in result.stderr


CASES = [
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
    Case("nan-weights", ("probe", "handed-over"), setup=_nan_weights, after=says("NaN"), invented=True),
    Case("plot-with-deleted-anomalies-json", ("plot", "no-json"), code=0, setup=_delete_anomalies_json),
    Case("anomalies-k-zero", ("anomalies", "{run}", "--k", "0")),
    Case("anomalies-top-zero", ("anomalies", "{run}", "--top", "0")),
    Case("export-onto-existing-file", ("export", "{run}", "--out", "{tmp}/file"), setup=file_setup("file", "keep me")),
    Case("export-unknown-format", ("export", "{run}", "--out", "{tmp}/x", "--format", "tflite")),
    Case("embed-unknown-format", ("embed", "{run}", "--format", "bogus")),
    Case("probe-shots-not-numbers", ("probe", "{run}", "--shots", "a,b")),
    Case("probe-finetune-labels-zero", ("probe", "{run}", "--finetune", "--finetune-labels", "0"),
         after=says("--finetune-labels must be a fraction"), invented=True),
    Case("probe-finetune-labels-without-finetune", ("probe", "{run}", "--finetune-labels", "0.1"),
         after=says("add --finetune"), invented=True),
    Case("similar-unknown-id", ("similar", "{run}", "--id", "no-such-object")),
    Case("explore-run-without-encoder", ("explore", "no-encoder"), setup=_run_without_encoder,
         after=says("no encoder.safetensors")),
    Case("explore-unknown-color-by", ("explore", "{run}", "--color-by", "no-such-column"),
         after=says("choose from label, anomaly, split")),
    Case("explore-umap-without-extra", ("explore", "{run}", "--method", "umap"), setup=_without_umap,
         after=says("pip install 'astrojepa[umap]'")),
    Case("explore-busy-port", ("explore", "{run}", "--serve", "--port", "{port}"), setup=_busy_port,
         after=_port_named_and_freed),
]


base_home, test_bad_input = catalogue_tests(CASES)
