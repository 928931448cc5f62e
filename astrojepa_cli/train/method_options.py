"""Options that only some objectives use: setting one for an objective that ignores it is an error.

Each option maps to the keyword of the loss plugin's factory that consumes it
(``pretrain`` passes an objective only the keywords its factory accepts). An
option left at its default is never an error, and neither is ``--local-views 0``
for an objective without local views: it asks for what the objective does anyway.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import registry
from astrojepa_cli.errors import UserError

OPTION_KEYWORD = {
    "lam": "lam", "masker": "masker", "pred_loss": "pred_loss", "ema": "ema",
    "global_views": "global_views", "local_views": "local_views", "global_size": "global_size",
    "local_size": "local_size", "global_scale": "global_scale", "local_scale": "local_scale",
    "view_noise": "augment", "rotation": "augment", "translate": "augment", "blur": "augment",
    "flux_scale": "augment", "temperature": "temperature", "proj_dim": "proj_dim",
    "proj_hidden": "proj_hidden", "proj_depth": "proj_depth",
}


def check_method_options(config) -> None:
    """Refuse any option of ``config`` (a :class:`PretrainConfig`) that its loss plugin does not take."""
    accepted = inspect.signature(registry.get("loss", config.loss).factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return  # a factory taking **options decides for itself
    defaults = {f.name: f.default for f in fields(config)}
    for option, keyword in OPTION_KEYWORD.items():
        value = getattr(config, option)
        if value == defaults[option] or keyword in accepted or (option == "local_views" and value == 0):
            continue
        raise UserError(f"--{option.replace('_', '-')} does not apply to --loss {config.loss} "
                        f"(set by a flag, the config file or the preset); drop it or choose a loss that uses it")
