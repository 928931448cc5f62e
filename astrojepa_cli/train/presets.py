"""Named recipes: measured sets of pretraining options, chosen by ``--preset`` or by the machine.

A preset only fills options; a config file overrides the preset and flags
override both. The recipes and the measurements behind them are in
``docs/results.md``.
"""

from __future__ import annotations

from astrojepa_cli.errors import UserError

PRESETS: dict[str, dict] = {
    # Small in-domain datasets (a few thousand cutouts) on a laptop-class CPU: the CPU recipe study's
    # winner (docs/results.md): SimCLR on a ResNet-18 at 32 px, whose embedding is the last two
    # stages' means concatenated. The budget sets the step count, so it ends on time on any machine.
    "small-cpu": {"arch": "resnet18", "loss": "simclr", "img_size": 32, "batch_size": 128, "lr": 1e-3,
                  "warmup_epochs": 1.0, "embedding_pool": "last2", "budget": "30m"},
    # LeJEPA on a CPU: the study's best LeJEPA recipe (docs/results.md): a ResNet-18 at 32 px,
    # λ 0.2, the last-two-stages embedding, 30 minutes; 2 global views and, as LeJEPA's Algorithm 2 has
    # for non-ViT encoders, no local views (the study's recipe had 2; a step costs 0.81 of its time,
    # benchmarks/results/lejepa-step-cost.json). Not yet scored in this form, so it is UNMEASURED.
    "lejepa-cpu": {"arch": "resnet18", "loss": "lejepa", "img_size": 32, "batch_size": 128, "lr": 1e-3,
                   "warmup_epochs": 1.0, "global_views": 2, "local_views": 0, "lam": 0.2,
                   "embedding_pool": "last2", "budget": "30m"},
    # The same recipe given a GPU's room: twice the resolution and batch, more epochs, bf16
    # (precision auto). Unmeasured: see docs/results.md before relying on it.
    "gpu": {"arch": "resnet18", "loss": "simclr", "img_size": 96, "batch_size": 256, "lr": 2e-3,
            "epochs": 200, "warmup_epochs": 10.0},
}
# Presets that have not been scored under the benchmark protocol: using one prints a warning.
UNMEASURED = ("lejepa-cpu", "gpu")
# Options that make a recipe. A call that sets none of them (by flag, config file or preset)
# gets the preset for its machine instead of the bare defaults.
RECIPE_OPTIONS = (
    "arch", "loss", "masker", "lam", "batch_size", "lr", "weight_decay", "weight_decay_end", "warmup_epochs",
    "ema", "img_size", "patch_size", "global_views", "local_views", "global_size", "local_size", "global_scale",
    "local_scale", "view_noise", "rotation", "translate", "blur", "flux_scale", "reddening",
    "extinction_coefficients", "band_gain", "drop_bands", "crop_ratio", "temperature", "proj_dim",
    "proj_hidden", "proj_depth", "pred_loss", "stretch",
)


def machine_preset(file_values: dict, flag_values: dict, has_gpu: bool) -> str | None:
    """The preset for a call that names no recipe: ``gpu`` with a GPU, ``small-cpu`` without; else None."""
    chosen = {**file_values, **flag_values}
    if chosen.get("preset") or any(key in chosen for key in RECIPE_OPTIONS):
        return None
    return "gpu" if has_gpu else "small-cpu"


def resolve_config(file_values: dict, flag_values: dict) -> dict:
    """Config values: the preset's, then the config file's, then the flags' (later wins).

    The preset may be named by the flag or by the file's ``preset`` key.
    """
    name = flag_values.get("preset") or file_values.get("preset")
    if name is not None and name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    return {**PRESETS.get(name, {}), **file_values, **flag_values, **({"preset": name} if name else {})}
