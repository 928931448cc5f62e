"""``benchmarks/first_run.py``: finds the README's install and quickstart blocks and times the quickstart as written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from first_run import bash_blocks, install, quickstart  # noqa: E402


def test_the_readme_quickstart_and_install_are_found():
    commands = quickstart(REPO / "README.md")
    assert any(command.startswith("astrojepa pretrain") for command in commands)
    assert all(command.startswith("astrojepa ") for command in commands)
    assert any("pip install ." in command for command in install(REPO / "README.md"))


def test_comments_are_dropped_and_continuations_joined(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```bash\n# a comment\nastrojepa pretrain --data d \\\n    --budget 9s\n\nastrojepa probe latest\n```\n")
    assert bash_blocks(readme) == [["astrojepa pretrain --data d --budget 9s", "astrojepa probe latest"]]


def test_the_script_times_each_command_stops_at_a_failure_and_names_the_machine(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("Install:\n\n```bash\npython3 -m venv .venv && . .venv/bin/activate && pip install .\n```\n\n"
                      "Quickstart:\n\n```bash\nastrojepa pretrain --help > /dev/null\nastrojepa nonsense\n"
                      "astrojepa plugins\n```\n")
    result = tmp_path / "first-run.json"
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "first_run.py"), "--readme", str(readme),
                                "--json", str(result)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert "$ astrojepa pretrain --help > /dev/null" in completed.stdout
    assert "wall time" in completed.stdout and "AVX-512" in completed.stdout and "logical cores" in completed.stdout
    recorded = json.loads(result.read_text())
    assert [(c["command"], c["exit_status"]) for c in recorded["commands"]] == [
        ("astrojepa pretrain --help > /dev/null", 0), ("astrojepa nonsense", 2)]
    assert recorded["exit_status"] == 2 and recorded["machine"]["cores"] >= 1
