"""A third-party plugin package installed the way pip installs one, written by the tests themselves.

The folder holds the package and a ``.dist-info`` with ``METADATA`` and
``entry_points.txt``; on ``PYTHONPATH`` of a fresh interpreter, ``importlib.metadata``
finds it exactly as it finds a pip-installed package.
"""

from __future__ import annotations

from pathlib import Path


def install_distribution(site: Path, package: str, source: str, entry_points: dict[str, str]) -> None:
    """Write package ``package`` (its ``__init__.py`` is ``source``) with ``astrojepa.plugins`` entry points."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(source)
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[astrojepa.plugins]\n" + "".join(f"{name} = {target}\n" for name, target in entry_points.items()))
    (info / "RECORD").write_text("")
