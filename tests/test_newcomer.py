"""A newcomer's first day through the real CLI: output that fits a pipe and an 80-column terminal,
runs that say how much they trained, completed runs that drop their optimiser state, the test split
left out of pretraining, and store names that are not silently replaced."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from astrojepa_cli.console import images_per_second
from astrojepa_cli.data.store_writer import StoreWriter

SPLITS = ["train"] * 32 + ["valid"] * 8 + ["test"] * 8
TINY = ("--data", "sky", "--arch", "vit-t", "--img-size", "16", "--patch-size", "8", "--batch-size", "8",
        "--local-views", "0", "--quiet")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def write_store(path: Path, splits: list[str] = SPLITS) -> None:
    """Labelled 16 px images (by default 32 train, 8 valid, 8 test) of two classes with underscores in
    their names."""
    images = np.random.default_rng(0).integers(0, 255, size=(len(splits), 16, 16, 1), dtype=np.uint8)
    with StoreWriter(path, name=path.stem, image_shape=(16, 16, 1), dtype=np.uint8,
                     class_names=["edge_on", "smooth_round"], provenance={"source": "test"}) as writer:
        writer.append(images, [i % 2 for i in range(len(splits))], [f"o{i}" for i in range(len(splits))], splits)
        writer.finish()


def astrojepa(*args: str, terminal: bool = False, check: int | None = 0) -> subprocess.CompletedProcess:
    """The installed CLI as a child process: stderr piped, or in a pseudo-terminal 80 columns wide."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm"}
    command = [sys.executable, "-m", "astrojepa_cli", *args]
    if terminal:
        line = " ".join(f"'{part}'" for part in command)
        result = subprocess.run(["script", "-qec", f"stty cols 80 2>/dev/null; {line}", "/dev/null"],
                                capture_output=True, text=True, env=env, timeout=600)
        result.stderr = ANSI.sub("", result.stdout.replace("\r", ""))
    else:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if check is not None:
        assert result.returncode == check, result.stderr
    return result


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A home with the store ``sky`` and two completed 3-step runs: ``plain`` and ``kept`` (--keep-state)."""
    home = tmp_path_factory.mktemp("a-rather-long-folder-name-so-that-paths-pass-eighty-columns") / "home"
    write_store(home / "data" / "sky.h5")
    for name, extra in (("plain", ()), ("kept", ("--keep-state",))):
        result = astrojepa("pretrain", *TINY, "--max-steps", "3", *extra, "--root", str(home))
        astrojepa("runs", "tag", re.search(r"^run (\S+) completed", result.stderr, re.M)[1], name, "--root", str(home))
        (home / f"{name}.log").write_text(result.stderr)
    return home


def _run_dir(root: Path, name: str) -> Path:
    return next(path.parent for path in (root / "runs").glob("*/manifest.json")
                if json.loads(path.read_text()).get("name") == name)


def test_piped_output_is_never_wrapped_and_stores_read_in_words(root, tmp_path):
    np.savez(tmp_path / "arrays.npz", images=np.zeros((12, 16, 16, 1), dtype=np.uint8))
    line = astrojepa("fetch-data", "npz", str(tmp_path / "arrays.npz"), "--name", "flat", "--size", "16",
                     "--root", str(root)).stderr
    store = root / "data" / "flat.h5"
    assert len(str(store)) > 80 and str(store) in line, line  # the path is whole on one line
    assert len(line.strip().splitlines()) == 1 and "{" not in line and "[" not in line
    assert re.search(r"stored 12 images of 16×16×1, splits [a-z]+ \d+.*, unlabelled in ", line), line


def test_a_store_name_is_not_silently_replaced(root, tmp_path):
    np.savez(tmp_path / "arrays.npz", images=np.full((10, 16, 16, 1), 7, dtype=np.uint8))
    before = (root / "data" / "sky.h5").read_bytes()
    refused = astrojepa("fetch-data", "npz", str(tmp_path / "arrays.npz"), "--name", "sky", "--root", str(root),
                        check=2).stderr
    assert refused.startswith("error: a store named 'sky' already exists") and "--force" in refused
    assert len(refused.strip().splitlines()) == 1 and (root / "data" / "sky.h5").read_bytes() == before
    astrojepa("fetch-data", "npz", str(tmp_path / "arrays.npz"), "--name", "other", "--root", str(root))
    replaced = astrojepa("fetch-data", "npz", str(tmp_path / "arrays.npz"), "--name", "other", "--force",
                         "--root", str(root), "--json")
    assert json.loads(replaced.stdout)["n_images"] == 10


def test_runs_list_and_compare_keep_whole_run_ids_at_80_columns(root):
    ids = [_run_dir(root, name).name for name in ("plain", "kept")]
    listed = astrojepa("runs", "list", "--root", str(root), terminal=True).stderr
    compared = astrojepa("runs", "compare", *ids, "--root", str(root), terminal=True).stderr
    for shown in (listed, compared):
        assert all(run_id in shown for run_id in ids), shown
        assert max(len(line) for line in shown.splitlines()) <= 80, shown


def test_a_short_run_says_it_trained_less_than_one_epoch(root):
    log, run_dir = (root / "plain.log").read_text(), _run_dir(root, "plain")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # 3 steps of 8 images; the 40 train and valid images make 5 steps an epoch.
    assert "after 3 steps (0.6 epoch: less than one pass over the training images), final loss" in log, log
    loss = manifest["result"]["final_loss"]
    assert f"final loss {loss:.4g}," in log and images_per_second(manifest["result"]["images_per_second"]) in log
    shown = astrojepa("runs", "show", "plain", "--root", str(root)).stderr
    assert re.search(r"trained\s+3 steps, 0\.6 epoch: less than one pass", shown), shown
    # log_every 10 is shortened so that a 3-step run still logs every step.
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3


def test_the_test_split_is_left_out_by_default_and_probe_says_when_it_was_not(root):
    log = (root / "plain.log").read_text()
    assert "pretraining on sky's train, valid splits (40 images): its labelled test split (8 images)" in log
    config = json.loads((_run_dir(root, "plain") / "manifest.json").read_text())["config"]
    assert config["train_splits"] == ["train", "valid"]
    every = json.loads(astrojepa("pretrain", *TINY, "--max-steps", "1", "--train-splits", "all",
                                 "--root", str(root), "--json").stdout)
    assert json.loads((Path(every["run_dir"]) / "manifest.json").read_text())["config"]["train_splits"] == [
        "train", "valid", "test"]
    warned = astrojepa("probe", every["run_id"], "--knn", "3", "--root", str(root)).stderr
    assert "warning: the encoder pretrained on sky's test split" in warned
    quiet = astrojepa("probe", "plain", "--knn", "3", "--root", str(root)).stderr
    assert "test split" not in quiet


def _tensor_names(run_dir: Path) -> list[str]:
    with safe_open(str(run_dir / "state.safetensors"), framework="pt") as handle:
        return list(handle.keys())


def test_a_completed_run_drops_its_optimiser_state_unless_kept(root):
    plain, kept = _run_dir(root, "plain"), _run_dir(root, "kept")
    assert not any(name.startswith("optimizer.") for name in _tensor_names(plain))
    assert any(name.startswith("objective.") for name in _tensor_names(plain))  # figures still rebuild the model
    assert any(name.startswith("optimizer.") for name in _tensor_names(kept))
    assert (plain / "state.safetensors").stat().st_size < (kept / "state.safetensors").stat().st_size / 2
    refused = astrojepa("pretrain", "--resume", "plain", "--max-steps", "4", "--root", str(root), check=2).stderr
    assert refused.startswith("error: run ") and "dropped its optimiser state" in refused and "--keep-state" in refused
    resumed = astrojepa("pretrain", "--resume", "kept", "--max-steps", "4", "--quiet", "--root", str(root)).stderr
    assert resumed.splitlines()[0] == f"resuming {kept.name} from step 3 of 4, with --max-steps 4", resumed


def test_a_budget_below_one_epoch_warns_with_the_step_time_and_a_recipe(tmp_path):
    home = tmp_path / "home"
    write_store(home / "data" / "sky.h5", ["train"] * 2000)
    # 2,000 images of batch 2 make 1,000 steps an epoch; a 3-second budget buys fewer, or none at all.
    result = astrojepa("pretrain", *TINY, "--batch-size", "2", "--budget", "3s", "--root", str(home), check=None)
    assert "calibrating --budget 3s on this machine" in result.stderr
    if result.returncode == 0:
        warning = next(line for line in result.stderr.splitlines() if line.startswith("warning: --budget 3s buys"))
        assert re.search(r"of 1,000 steps\) at [\d.e-]+ s per step on this machine; for a run that fits, try", warning)
    else:
        assert result.returncode == 2 and "too short" in result.stderr and "for a run that fits, try" in result.stderr
