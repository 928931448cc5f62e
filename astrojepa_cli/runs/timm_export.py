"""Export a run's encoder so that plain timm loads it, with no astrojepa code involved.

The folder holds ``model.safetensors`` (the timm backbone's state dict) and a
``config.json`` in the layout timm reads for ``local-dir:`` and Hugging Face
Hub models: ``architecture``, ``num_classes``, ``model_args`` (the keyword
arguments that rebuild the same network) and ``pretrained_cfg`` (the input size
the encoder saw, the store's import crop as ``crop_pct``, and the per-channel mean
and std it was normalised with). Either of these loads it::

    timm.create_model("local-dir:OUT", pretrained=True)
    timm.create_model(cfg["architecture"], pretrained=True,
                      pretrained_cfg_overlay=dict(file="OUT/model.safetensors"), **cfg["model_args"])

Beside them, ``embedding.json`` and ``README.md`` (:mod:`astrojepa_cli.runs.embedding_recipe`) state
how the run's embedding is computed from that model, with code that reproduces ``embed``'s numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrojepa_cli.atomic import write_json
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs.embedding_recipe import embedding_recipe, pooled_width, readme, timm_code, write_recipe
from astrojepa_cli.runs.store import Run, run_pool, run_stretch
from astrojepa_cli.runs.weights import load_encoder, save_tensors

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def timm_config(run: Run, timm_spec: dict, num_features: int, input_size: int | None = None) -> dict:
    """``config.json`` for the encoder described by ``timm_spec``, trained on the run's store.

    The input size is what the encoder was fed: ``input_size`` (``pretrain --img-size``), else its
    ``img_size`` (ViTs), else the store's image size (CNNs take any size). ``crop_pct`` is the centre crop the store's images had at import,
    so timm's eval transform (resize to size / crop_pct, centre crop) reproduces the store's pixels.
    ``mean``/``std`` are in timm's convention (pixels scaled to [0, 1]) for 8-bit stores; float
    stores record their raw channel statistics and ``astrojepa.pixel_scale`` 1. A run trained
    with an intensity stretch records it under ``astrojepa.stretch``: timm's transforms cannot
    apply it, so apply it before the normalisation.
    """
    spec = dict(timm_spec)
    architecture = spec.pop("model_name")
    model_args = {**spec, "num_classes": 0}
    dataset = run.manifest.get("dataset", {})
    channels = int(model_args.get("in_chans", 3))
    store_path = Path(dataset.get("store", ""))
    if not store_path.is_file():
        raise UserError(f"the run's store {store_path} is gone; its input size and normalisation cannot be recorded")
    info = store.read_info(store_path)
    arrays = store.load(store_path, with_images=False)
    img_size = int(input_size or model_args.get("img_size", info.image_shape[0]))
    scale = 255.0 if arrays.images.dtype == np.uint8 else 1.0
    pretrained_cfg = {"input_size": [channels, img_size, img_size], "num_classes": 0,
                      "crop_pct": float(info.provenance.get("preprocessing", {}).get("crop", 1.0)),
                      "crop_mode": "center", "interpolation": "bilinear",
                      "mean": (arrays.channel_mean / scale).tolist(),
                      "std": np.maximum(arrays.channel_std / scale, 1e-6).tolist()}
    return {
        "architecture": architecture,
        "num_classes": 0,
        "num_features": num_features,
        "global_pool": model_args.get("global_pool", "avg"),
        "model_args": model_args,
        "pretrained_cfg": pretrained_cfg,
        "astrojepa": {"run_id": run.id, "arch": run.manifest.get("config", {}).get("arch"),
                      "loss": run.manifest.get("config", {}).get("loss"), "dataset": dataset.get("name"),
                      "pixel_scale": scale, "stretch": run_stretch(run.manifest),
                      "embedding_pool": run_pool(run.manifest),
                      "store_image_size": info.image_shape[0]},
    }


def export_timm(run: Run, out_dir: Path) -> dict:
    """Write ``model.safetensors`` and ``config.json`` for ``run``'s encoder into ``out_dir``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is an existing file; export writes a folder (give a new or existing folder)")
    encoder = load_encoder(run)
    if not type(encoder.backbone).__module__.startswith("timm."):
        raise UserError(f"{encoder.timm_spec['model_name']} is defined by astrojepa, not timm, so plain timm "
                        "cannot rebuild it; use the run's encoder.safetensors with astrojepa")
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, config_path = out_dir / WEIGHTS_FILE, out_dir / CONFIG_FILE
    save_tensors(weights, encoder.backbone.state_dict(), {"format": "pt"})
    config = timm_config(run, encoder.timm_spec, encoder.embed_dim, getattr(encoder, "input_size", None))
    write_json(config_path, config)
    pool = run_pool(run.manifest)
    recipe = embedding_recipe(Path(run.manifest["dataset"]["store"]), pool, run_stretch(run.manifest),
                              config["pretrained_cfg"]["input_size"][-1], pooled_width(encoder, pool))
    note = (f"`{WEIGHTS_FILE}` and `{CONFIG_FILE}` rebuild the encoder in plain timm "
            f"(`timm.create_model(\"local-dir:FOLDER\", pretrained=True)`); the code below adds the run's "
            "normalisation and pooling.")
    recipe_path, readme_path = write_recipe(out_dir, recipe, readme(recipe, run.id, note, timm_code(recipe)))
    return {"out": str(out_dir), "weights": str(weights), "config": str(config_path), "recipe": str(recipe_path),
            "readme": str(readme_path), "architecture": config["architecture"], "model_args": config["model_args"],
            "embedding_pool": pool, "embedding_dim": recipe["dim"]}
