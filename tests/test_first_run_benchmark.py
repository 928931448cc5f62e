"""``benchmarks/first_run.py``: finds the README's main job, leaves out its install, and times it as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from first_run import main_job, without_install  # noqa: E402


def test_the_readme_main_job_is_found_and_its_install_left_out():
    command = main_job(REPO / "README.md")
    assert "astrojepa pretrain" in command
    job = without_install(command)
    assert job.startswith("astrojepa ") and "pip install" not in job and "venv" not in job
    assert job in command  # the rest of the line, exactly as written


def test_the_script_times_the_command_and_names_the_machine(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("Intro.\n\n```bash\npython3 -m venv .venv && . .venv/bin/activate && pip install . && "
                      "astrojepa pretrain --help > /dev/null\n```\n")
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "first_run.py"), "--readme", str(readme)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "timing: astrojepa pretrain --help > /dev/null" in completed.stdout
    assert "wall time" in completed.stdout and "AVX-512" in completed.stdout and "logical cores" in completed.stdout
