"""Options that only some objectives use: setting one for an objective that ignores it is an error.

Each option maps to the keyword of the loss plugin's factory that consumes it
(``pretrain`` offers an objective every keyword and builds it with those its
factory takes, :func:`registry.objective.build_objective`). An
option left at its default is never an error, and neither is ``--local-views 0``
for an objective without local views: it asks for what the objective does anyway.
"""

from __future__ import annotations

from dataclasses import fields

import registry
from astrojepa_cli.errors import UserError

OPTION_KEYWORD = {
    "lam": "lam", "masker": "masker", "pred_loss": "pred_loss", "ema": "ema",
    "global_views": "global_views", "local_views": "local_views", "global_size": "global_size",
    "local_size": "local_size", "global_scale": "global_scale", "local_scale": "local_scale",
    "view_noise": "augment", "rotation": "augment", "translate": "augment", "blur": "augment",
    "flux_scale": "augment", "reddening": "augment", "extinction_coefficients": "augment", "band_gain": "augment",
    "drop_bands": "augment", "crop_ratio": "crop_ratio", "temperature": "temperature", "proj_dim": "proj_dim",
    "proj_hidden": "proj_hidden", "proj_depth": "proj_depth",
}


def _takes(loss: str, option: str) -> bool:
    """Whether the loss plugin ``loss`` uses the config ``option`` (options of no particular loss: always)."""
    return option not in OPTION_KEYWORD or registry.get("loss", loss).takes(OPTION_KEYWORD[option])


def options_for(loss: str, values: dict) -> dict:
    """``values`` without the options ``loss`` does not use (for benchmarks that loop over losses)."""
    return {option: value for option, value in values.items() if _takes(loss, option)}


def check_method_options(config) -> None:
    """Refuse any option of ``config`` (a :class:`PretrainConfig`) that its loss plugin does not take."""
    defaults = {f.name: f.default for f in fields(config)}
    for option in OPTION_KEYWORD:
        value = getattr(config, option)
        if value == defaults[option] or _takes(config.loss, option) or (option == "local_views" and value == 0):
            continue
        raise UserError(f"--{option.replace('_', '-')} does not apply to --loss {config.loss} "
                        f"(set by a flag, the config file or the preset); drop it or choose a loss that uses it")
