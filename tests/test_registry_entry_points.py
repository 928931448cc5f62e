"""Third-party plugins arrive through a real installed distribution's ``astrojepa.plugins`` entry points.

The distribution is written to a folder (package plus ``.dist-info`` with
``METADATA`` and ``entry_points.txt``) that goes on ``PYTHONPATH`` of a fresh
interpreter, so ``importlib.metadata`` finds it exactly as it finds a
pip-installed package, and the registry is loaded from scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.plugin_distribution import install_distribution

PLUGIN_MODULE = '''
"""A third-party astrojepa plugin package."""
from registry import register
from registry.encoders import Encoder
from registry.maskers import RandomMasker


@register("masker", "quarter")
def quarter() -> RandomMasker:
    """Random masking of a quarter of the patches."""
    return RandomMasker(target_ratio=0.25)


def tiny_resnet(in_chans: int = 3) -> Encoder:
    """ResNet-18 under a third-party name."""
    return Encoder("resnet18", in_chans=in_chans)


tiny_resnet.__plugin_kind__ = "encoder"
tiny_resnet.__plugin_name__ = "tiny-resnet"
'''

PROBE = '''
import json, torch, registry
masks = registry.create("masker", "quarter")(torch.zeros(2, 1, 16, 16), 4, torch.Generator().manual_seed(0))
encoder = registry.create("encoder", "tiny-resnet", in_chans=2)
print(json.dumps({
    "names": {kind: registry.names(kind) for kind in registry.KINDS},
    "descriptions": {kind: registry.describe(kind) for kind in ("encoder", "masker")},
    "target_count": masks.targets.shape[-1],
    "embed_dim": encoder.embed_dim,
}))
'''


def _install_distribution(site: Path) -> None:
    install_distribution(site, "astro_demo_plugin", PLUGIN_MODULE,
                         {"quarter": "astro_demo_plugin", "tiny-resnet": "astro_demo_plugin:tiny_resnet"})


def _fresh_python(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_entry_point_plugins_register_next_to_the_built_ins(tmp_path):
    _install_distribution(tmp_path / "site")
    found = json.loads(_fresh_python(tmp_path / "site", "-c", PROBE).stdout)
    assert "quarter" in found["names"]["masker"] and "multiblock" in found["names"]["masker"]
    assert "tiny-resnet" in found["names"]["encoder"] and "vit-t" in found["names"]["encoder"]
    assert found["descriptions"]["masker"]["quarter"] == "Random masking of a quarter of the patches."
    assert found["descriptions"]["encoder"]["tiny-resnet"] == "ResNet-18 under a third-party name."
    assert found["target_count"] == 4 and found["embed_dim"] == 512

