"""Named recipes: tested sets of pretraining options, chosen by ``--preset``.

A preset only fills options; a config file overrides the preset and flags
override both. The recipes and the measurements behind them are in
``docs/results.md``.
"""

from __future__ import annotations

from astrojepa_cli.errors import UserError

PRESETS: dict[str, dict] = {
    # Small in-domain datasets (a few thousand cutouts) on a laptop-class CPU: SimCLR on a
    # ResNet-18 at 48 px won the CPU recipe search (docs/results.md). 40 epochs of ~5,300
    # images take about 30 minutes on 2 cores.
    "small-cpu": {"arch": "resnet18", "loss": "simclr", "img_size": 48, "batch_size": 128, "lr": 1e-3,
                  "epochs": 40, "warmup_epochs": 1.0},
    # The same recipe given a GPU's room: twice the resolution and batch, more epochs, bf16
    # (precision auto). Not yet measured on a GPU: no device was lent to this project so far.
    "gpu": {"arch": "resnet18", "loss": "simclr", "img_size": 96, "batch_size": 256, "lr": 2e-3,
            "epochs": 200, "warmup_epochs": 10.0},
}


def resolve_config(file_values: dict, flag_values: dict) -> dict:
    """Config values: the preset's, then the config file's, then the flags' (later wins).

    The preset may be named by the flag or by the file's ``preset`` key.
    """
    name = flag_values.get("preset") or file_values.get("preset")
    if name is not None and name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    return {**PRESETS.get(name, {}), **file_values, **flag_values, **({"preset": name} if name else {})}
