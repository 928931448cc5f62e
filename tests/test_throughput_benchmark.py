"""Tiny runs of benchmarks/throughput.py and benchmarks/galaxy10_sized.py, so the GPU commands cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(home: Path, script: str, *args: str) -> str:
    env = {**os.environ, "ASTROJEPA_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_throughput_reports_speed_up_and_mfu_for_every_loss(blob_store, home):
    out = _run(home, "throughput.py", "--data", blob_store, "--archs", "vit-t", "--losses", "lejepa,ijepa",
               "--img-size", "16", "--patch-size", "4", "--batch-size", "16", "--local-views", "2",
               "--steps", "2", "--repeats", "2", "--mfu", "--peak-tflops", "0.5")
    rows = {line.split("|")[2].strip(): [cell.strip() for cell in line.split("|")[3:-1]]
            for line in out.splitlines() if line.startswith("| vit-t")}
    lejepa, ijepa = rows["lejepa"], rows["ijepa"]
    reference, ours, speed_up = float(lejepa[0].split()[0]), float(lejepa[2].split()[0]), lejepa[3]
    assert re.fullmatch(r"[\d.]+x \([\d.]+–[\d.]+\)", speed_up)  # median (min–max) of two repeats
    # Utilisation scales with the rate over the same FLOPs, so the two MFUs keep the loops' ratio.
    mfu_reference, mfu_ours = (float(cell.rstrip("%")) for cell in lejepa[5:7])
    assert 0 < mfu_ours < 100 and abs(mfu_ours / mfu_reference - ours / reference) < 0.05 * ours / reference + 0.1
    assert ijepa[0] == "n/a" and float(ijepa[2].split()[0]) > 0 and float(ijepa[6].rstrip("%")) > 0


def test_galaxy10_sized_file_imports_as_a_store(cli, blob_store, home, tmp_path):
    target = tmp_path / "g10.h5"
    _run(home, "galaxy10_sized.py", "--data", blob_store, "--out", str(target), "--count", "130", "--size", "24")
    info = cli.json("fetch-data", "h5", str(target), "--name", "g10-sized", "--size", "24")
    assert info["n_images"] == 130
    assert info["image_shape"] == [24, 24, 1] and info["dtype"] == "uint8"


def test_engine_options_compares_layouts_in_one_run(home):
    out = _run(home, "engine_options.py", "--archs", "resnet18", "--img-size", "16", "--batch-size", "8",
               "--rounds", "2", "--steps-per-round", "1")
    row = next(line for line in out.splitlines() if line.startswith("| resnet18"))
    default, engine, speed_up = (cell.strip() for cell in row.split("|")[2:5])
    # The printed times and ratio are each rounded, so they agree to the ratio's last digit.
    assert abs(float(speed_up.rstrip("x")) - float(default) / float(engine)) <= 0.011
