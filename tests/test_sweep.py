"""benchmarks/sweep.py end to end on a tiny store: two recipes, scored, ranked, plotted, resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SWEEP = Path(__file__).resolve().parents[1] / "benchmarks" / "sweep.py"
sys.path.insert(0, str(SWEEP.parent))

from sweeping.recipes import split_probe_options  # noqa: E402

TINY = """
[sweep]
datasets = ["blobs"]
seeds = [0]
steps = {steps}
scratch_steps = 3

[base]
loss = "simclr"
arch = "resnet18"
img_size = 16
batch_size = 16
log_every = 1

[[run]]
name = "base"

[[run]]
name = "fixed-temperature"
temperature = 0.2

[[run]]
name = "base-last2-layernorm"
probe_pool = "last2"
probe_norm = "layernorm"
"""


def _sweep(home: Path, sweep_file: Path, out: Path, *extra: str, wait: bool = True):
    env = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SWEEP), str(sweep_file), "--out", str(out), *extra]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]


def test_two_recipe_sweep_scores_ranks_plots_and_skips_finished_runs(blob_store, home, tmp_path):
    sweep_file, out = tmp_path / "tiny.toml", tmp_path / "out"
    sweep_file.write_text(TINY.format(steps=3))
    done = _sweep(home, sweep_file, out)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(out)
    recipes = {row["name"]: row for row in rows if row["kind"] == "recipe"}
    baselines = {row["baseline"] for row in rows if row["kind"] == "baseline"}
    assert set(recipes) == {"base", "fixed-temperature", "base-last2-layernorm"}
    # The baselines are scored once per architecture, size and probe: the two recipes probed alike share
    # theirs, and the variant gets its own, probed as it is.
    # The from-scratch 10-shot baseline depends on the architecture and input alone: one for all three.
    assert baselines == {"random_weights", "pixels", "scratch"} and len(rows) == 8
    baseline_keys = {row["key"] for row in rows if row["kind"] == "baseline"}
    assert baseline_keys == {*recipes["base"]["baselines"].values(),
                             *recipes["base-last2-layernorm"]["baselines"].values(), "scratch/blobs/resnet18/16px/p8/none"}
    scratch = next(row for row in rows if row.get("baseline") == "scratch")["scores"]["10-shot"]
    assert scratch["draws"] == 5 and scratch["training"]["steps"] == 3 and scratch["tta"] == "d4"
    assert recipes["base-last2-layernorm"]["baselines"]["random_weights"].endswith("/last2/layernorm")
    # A recipe that only probes differently reuses the base's pretraining.
    variant = recipes["base-last2-layernorm"]
    assert variant["run_id"] == recipes["base"]["run_id"] and variant["pretraining_shared_with"] == "base/blobs/seed0"
    assert variant["probe"] == {"probe_pool": "last2", "probe_norm": "layernorm"}
    assert len(list((home / "runs").iterdir())) == 2
    for row in recipes.values():
        assert row["steps"] == 3 and row["config"]["img_size"] == 16
        for probe in ("linear", "knn-20", "10-shot"):
            assert set(row["scores"][probe]) >= {"accuracy", "balanced_accuracy", "macro_f1"}
    assert recipes["fixed-temperature"]["config"]["temperature"] == 0.2
    assert "recipes ranked by linear" in done.stdout and "fixed-temperature" in done.stdout
    assert (out / "score-vs-compute.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert [line["score"] for line in summary] == sorted((line["score"] for line in summary), reverse=True)
    assert all("10-shot_scratch" in line["datasets"]["blobs"] for line in summary)

    again = _sweep(home, sweep_file, out)
    assert again.returncode == 0 and "pretraining" not in again.stdout
    assert len(_rows(out)) == 8

    # A probe variant added after its pretraining's run was deleted (or the sweep moved to another
    # machine) pretrains anew instead of failing on the missing run.
    shutil.rmtree(home / "runs" / recipes["base"]["run_id"])
    sweep_file.write_text(TINY.format(steps=3) + '\n[[run]]\nname = "base-layernorm"\nprobe_norm = "layernorm"\n')
    later = _sweep(home, sweep_file, out)
    assert later.returncode == 0, later.stderr[-3000:]
    variant = next(row for row in _rows(out) if row.get("name") == "base-layernorm")
    assert variant["pretraining_shared_with"] is None and variant["run_id"] != recipes["base"]["run_id"]


def test_interrupted_sweep_resumes_its_pretraining(blob_store, home, tmp_path):
    sweep_file, out = tmp_path / "long.toml", tmp_path / "out"
    sweep_file.write_text(TINY.format(steps=60).split("[[run]]")[0] + '[[run]]\nname = "base"\n')
    process = _sweep(home, sweep_file, out, wait=False)
    deadline = time.time() + 300
    while not list((home / "runs").glob("*/metrics.jsonl")):
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("interrupted")
    interrupted = json.loads((out / "in-flight.json").read_text())["base/blobs/seed0"]
    manifest = json.loads((home / "runs" / interrupted / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["steps"] < 60
    assert not (out / "rows.jsonl").exists()

    resumed = _sweep(home, sweep_file, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    row = next(row for row in _rows(out) if row["kind"] == "recipe")
    assert row["run_id"] == interrupted and row["steps"] == 60
    assert json.loads((out / "in-flight.json").read_text()) == {}


def test_bad_sweep_files_are_one_error_line(home, tmp_path):
    cases = {
        "missing.toml": None,
        "syntax.toml": "[sweep\n",
        "no-length.toml": '[sweep]\ndatasets = ["blobs"]\n[[run]]\nname = "a"\n',
        "bad-option.toml": '[sweep]\ndatasets = ["blobs"]\nsteps = 2\n[[run]]\nname = "a"\nlr = "fast"\n',
        "inapplicable.toml": '[sweep]\ndatasets = ["blobs"]\nsteps = 2\n[[run]]\nname = "a"\nloss = "simclr"\nlam = 0.5\n',
        "bad-scratch-steps.toml": '[sweep]\ndatasets = ["blobs"]\nsteps = 2\nscratch_steps = "many"\n[[run]]\nname = "a"\n',
        "bad-probe.toml": '[sweep]\ndatasets = ["blobs"]\nsteps = 2\n[[run]]\nname = "a"\nprobe_pool = "max"\n',
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        done = _sweep(home, path, tmp_path / "out")
        assert done.returncode == 2, (name, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, done.stderr)


def test_results_page_is_generated_from_the_committed_results():
    report = Path(__file__).resolve().parents[1] / "benchmarks" / "report.py"
    done = subprocess.run([sys.executable, str(report), "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_a_recipe_is_probed_as_its_runs_embedding_unless_it_says_otherwise():
    assert split_probe_options({"lr": 1e-3}, "last2") == ({"lr": 1e-3}, {"probe_pool": "last2", "probe_norm": "standard"})
    assert split_probe_options({"probe_pool": "mean"}, "last2")[1]["probe_pool"] == "mean"
    assert split_probe_options({"embedding_pool": "last2"})[0] == {"embedding_pool": "last2"}


def test_each_cpu_preset_ships_the_recipe_the_studies_scored():
    from report import PRESET_RECIPES, ROOT, STUDIES

    from astrojepa_cli.train.presets import PRESETS
    from sweeping.recipes import read_sweep, recipe_config

    from astrojepa_cli.train.presets import UNMEASURED

    # every preset ships a recipe the studies scored, or says on use that it has not been measured
    assert set(PRESET_RECIPES) == {"small-cpu"} and {"lejepa-cpu", "gpu"} <= set(UNMEASURED)
    for preset, names in PRESET_RECIPES.items():
        shipped = PRESETS[preset]
        assert shipped["budget"] == "30m"
        for (_, sweep_file, _, _), name in zip(STUDIES, names):
            sweep = read_sweep(ROOT / sweep_file)
            options = dict(sweep.recipes)[name]
            scored = recipe_config(sweep, options, sweep.datasets[0], 0, name=name)
            probed_as = split_probe_options(options, scored.embedding_pool)[1]["probe_pool"]
            for key, value in shipped.items():
                if key not in ("budget", "embedding_pool"):  # the study's runs were probed as the preset embeds
                    assert getattr(scored, key) == value, (preset, sweep_file, name, key)
            assert probed_as == shipped["embedding_pool"], (preset, sweep_file, name)
