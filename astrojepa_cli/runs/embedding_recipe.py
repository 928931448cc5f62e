"""How to rebuild a run's embedding outside astrojepa: ``embedding.json`` and a README with Python to run.

The embedding ``embed``, ``probe``, ``anomalies`` and ``similar`` use is not the bare timm model's output
when the run pools differently (``pretrain --embedding-pool last2``), and every variant depends on the
pixel scale, the stretch, the per-channel normalisation and the input size. The recipe states each of
these with its numbers, read from the same :class:`~astrojepa_cli.data.loader.Normaliser` the
evaluation uses, so the README's code gives ``embed``'s numbers (to float rounding).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from astrojepa_cli.atomic import write_bytes, write_json
from astrojepa_cli.data import loader, store

RECIPE_FILE = "embedding.json"
README_FILE = "README.md"

# What each pooling computes, in plain timm, on ``model = timm.create_model(..., num_classes=0)``.
POOL_CODE = {
    "mean": "model(x)",
    "last2": "torch.cat([m.mean(dim=(-2, -1)) for m in model.forward_intermediates(x, indices=2, "
             "intermediates_only=True)], dim=1)",
    "cls": "model.fc_norm(model.forward_features(x)[:, 0])",
}
POOL_MEANING = {
    "mean": "the model's own pooled output: global average pooling (CNNs) or the mean of the patch tokens (ViTs)",
    "last2": "the concatenation of the spatial means of the last two stages' (CNNs) or blocks' (ViTs) feature maps",
    "cls": "the final class token after the output norm",
}
NORMALISE_CODE = {
    "none": "x = (x - tensor('mean')) / tensor('std')",
    "asinh": "x = (torch.asinh(x / tensor('softening')) - tensor('mean')) / tensor('std')",
    "zscore": "x = (x - x.mean(dim=(-2, -1), keepdim=True)) / (x.std(dim=(-2, -1), keepdim=True, unbiased=False) + 1e-6)",
}
NORMALISE_MEANING = {
    "none": "per channel, (x - mean) / std",
    "asinh": "per channel, (asinh(x / softening) - mean) / std (Lupton et al. 1999)",
    "zscore": "per image and channel, (x - mean_HW(x)) / (std_HW(x) + 1e-6)",
}


def _channel_values(values: torch.Tensor) -> list[float]:
    return [float(v) for v in values.flatten().tolist()]


def pooled_width(encoder: torch.nn.Module, pool: str) -> int:
    """The embedding's width: the encoder's for ``mean`` and ``cls``; for ``last2`` the channels of the
    last two feature maps (timm's ``feature_info``: the two last stages of a CNN, two blocks of a ViT)."""
    if pool != "last2":
        return int(encoder.embed_dim)
    return sum(int(stage["num_chs"]) for stage in encoder.backbone.feature_info[-2:])


def embedding_recipe(store_path: Path, pool: str, stretch: str, img_size: int, dim: int) -> dict:
    """The embedding's definition for an encoder of input size ``img_size`` and width ``dim`` on ``store_path``."""
    info = store.read_info(store_path)
    normaliser = loader.Normaliser.for_store(store_path, torch.device("cpu"), stretch)
    preprocessing = info.provenance.get("preprocessing", {})
    normalisation = {"stretch": stretch, "formula": NORMALISE_MEANING[stretch]}
    if stretch != "zscore":
        normalisation.update(mean=_channel_values(normaliser.mean), std=_channel_values(normaliser.std))
    if stretch == "asinh":
        normalisation["softening"] = _channel_values(normaliser.softening)
    return {
        "dim": dim,
        "pool": pool,
        "pool_meaning": POOL_MEANING[pool],
        "pool_code": POOL_CODE[pool],
        "input": {"layout": "(N, H, W, C): the store's pixels, rows as astrojepa stores them",
                  "dtype": str(np.dtype(info.dtype)), "pixel_scale": normaliser.scale,
                  "channels": preprocessing.get("mode") or f"{info.channels} channel(s), in the store's order",
                  "store_image_size": info.image_shape[0], "encoder_image_size": img_size,
                  "import_crop": preprocessing.get("crop", 1.0)},
        "normalisation": normalisation,
        "resize": None if img_size == info.image_shape[0] else
        f"bilinear with antialiasing (align_corners=False) to {img_size} x {img_size}, after the normalisation",
        "test_time_views": "none (embed --tta d4 averages the embeddings of the 8 rotations/flips)",
    }


def timm_code(recipe: dict) -> str:
    """Python that computes the embedding with plain timm from this folder's ``config.json`` and weights."""
    resize = ("" if recipe["resize"] is None else
              f"    x = F.interpolate(x, size=({recipe['input']['encoder_image_size']},) * 2, mode=\"bilinear\", "
              "antialias=True, align_corners=False)\n")
    return f"""import json

import numpy as np
import timm
import torch
import torch.nn.functional as F

folder = "."  # this folder
recipe = json.load(open(f"{{folder}}/{RECIPE_FILE}"))
model = timm.create_model(f"local-dir:{{folder}}", pretrained=True).eval()


def tensor(name):
    return torch.tensor(recipe["normalisation"][name]).view(1, -1, 1, 1)


@torch.no_grad()
def embed(images: np.ndarray) -> np.ndarray:
    \"\"\"(N, H, W, C) store pixels -> (N, {recipe['dim']}) embeddings.\"\"\"
    x = torch.from_numpy(np.asarray(images)).permute(0, 3, 1, 2).float() / recipe["input"]["pixel_scale"]
    {NORMALISE_CODE[recipe['normalisation']['stretch']]}
{resize}    return ({recipe['pool_code']}).numpy()
"""


def onnx_code(model_file: str) -> str:
    """Python that computes the embedding with onnxruntime from the exported model."""
    return f"""import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession("{model_file}")


def embed(images: np.ndarray) -> np.ndarray:
    \"\"\"(N, H, W, C) store pixels (any batch size) -> (N, D) embeddings.\"\"\"
    return session.run(None, {{"images": np.asarray(images, dtype=np.float32)}})[0]
"""


def readme(recipe: dict, run_id: str, files_note: str, code: str) -> str:
    """The README of an export: what the embedding is, step by step, and Python that computes it."""
    source = recipe["input"]
    return f"""# Embedding of run {run_id}

{files_note}

The run's embedding (what `astrojepa embed`, `probe`, `anomalies` and `similar` use) is
`{recipe['pool']}`: {recipe['pool_meaning']}; {recipe['dim']} dimensions. From a store image to it:

1. Pixels as the store holds them: {source['layout']}, {source['dtype']}, {source['store_image_size']} px,
   channels {source['channels']} (the import cropped the centre {source['import_crop']} of each side
   and resized it). Divide by {source['pixel_scale']:g}.
2. Normalise ({recipe['normalisation']['stretch']} stretch): {recipe['normalisation']['formula']}, with the
   constants in `{RECIPE_FILE}`.
3. Resize: {recipe['resize'] or 'none (the encoder takes the store size)'}.
4. Pool: `{recipe['pool_code']}`.

No test-time views: {recipe['test_time_views']}.

```python
{code}```
"""


def write_recipe(out_dir: Path, recipe: dict, readme_text: str) -> tuple[Path, Path]:
    """Write ``embedding.json`` and ``README.md`` into ``out_dir``."""
    recipe_path, readme_path = out_dir / RECIPE_FILE, out_dir / README_FILE
    write_json(recipe_path, recipe)
    write_bytes(readme_path, readme_text.encode())
    return recipe_path, readme_path
