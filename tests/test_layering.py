"""The import map has no upward arrow: CLI -> evaluation / engine -> data, runs, registry.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import
cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "astrojepa_cli"
MAX_LINES = 300

# Each layer and the layers it must never import.
TOP = {"astrojepa_cli.app", "astrojepa_cli.commands", "astrojepa_cli.launcher", "astrojepa_cli.__main__"}
MIDDLE = {"astrojepa_cli.evaluate", "astrojepa_cli.train"}
FORBIDDEN = {
    "astrojepa_cli.evaluate": TOP | {"astrojepa_cli.train"},
    "astrojepa_cli.train": TOP | {"astrojepa_cli.evaluate"},
    "astrojepa_cli.data": TOP | MIDDLE,
    "astrojepa_cli.runs": TOP | MIDDLE,
    "registry": {"astrojepa_cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _sources() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "registry").rglob("*.py")])


def test_no_upward_or_sideways_arrow():
    wrong = []
    for path in _sources():
        module = _module_name(path)
        for layer, forbidden in FORBIDDEN.items():
            if not _within(module, layer):
                continue
            for imported in _imports(path):
                if any(_within(imported, target) for target in forbidden):
                    wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_layering_check_sees_a_lazy_upward_import(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from astrojepa_cli.train.loop import pretrain\n")
    assert "astrojepa_cli.train.loop" in _imports(source)


@pytest.mark.parametrize("folder", ["astrojepa_cli", "registry", "benchmarks"])
def test_no_source_file_over_300_lines(folder):
    long = {str(path.relative_to(ROOT)): n for path in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long
