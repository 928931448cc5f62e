"""Export a run's embedding as one ONNX model: store pixels in, the embedding ``embed`` writes out.

The exported network is :class:`~astrojepa_cli.evaluate.features.EmbeddingModel`, the module
``embed`` itself runs: stretch and per-channel normalisation, the resize to the encoder's input size,
the encoder and the run's pooling. Its input ``images`` is (N, H, W, C) float32, the store's pixels in
the store's scale (0-255 for 8-bit stores) at the store's image size, any batch size; its output
``embedding`` is (N, D). It is written with PyTorch's ONNX exporter (``torch.export``, which needs
onnx and onnxscript) and checked against PyTorch with onnxruntime on a few of the store's images.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch

from astrojepa_cli import runs
from astrojepa_cli.atomic import atomic_path
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import embedding_model, images_at
from astrojepa_cli.runs.embedding_recipe import embedding_recipe, onnx_code, readme, write_recipe

ONNX_FILE = "embedding.onnx"
OPSET = 18  # the first opset whose Resize has antialiasing
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
CHECK_IMAGES = 4
TOLERANCE = 1e-4


class StorePixelsEmbedding(torch.nn.Module):
    """(N, H, W, C) store pixels -> the run's embedding: the channels-last layout the store holds."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.permute(0, 3, 1, 2))


def require_onnx() -> None:
    """A clear error naming the extra to install when the ONNX packages are missing."""
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"--format onnx needs {', '.join(missing)}: pip install 'astrojepa[onnx]'")


def export_onnx(run: runs.Run, out_dir: Path) -> dict:
    """Write ``embedding.onnx``, ``embedding.json`` and ``README.md`` for ``run``'s embedding into ``out_dir``;
    the largest difference from PyTorch on a few store images is returned (and must be under 1e-4)."""
    require_onnx()
    import onnxruntime

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is an existing file; export writes a folder (give a new or existing folder)")
    store_path = Path(run.manifest.get("dataset", {}).get("store", ""))
    if not store_path.is_file():
        raise UserError(f"the run's store {store_path} is gone; its normalisation cannot be built into the model")
    pool, stretch = runs.run_pool(run.manifest), runs.run_stretch(run.manifest)
    embedding = embedding_model(runs.load_encoder(run), store_path, "cpu", pool, stretch)
    model = StorePixelsEmbedding(embedding).eval()
    n_images = store.read_info(store_path).n_images
    # At least 2 rows (repeated from a 1-image store): the exporter would fix a batch axis of size 1.
    rows = np.arange(max(2, min(CHECK_IMAGES, n_images))) % n_images
    sample = torch.from_numpy(images_at(store_path, rows).astype(np.float32))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    _export(model, sample, path)
    with torch.no_grad():
        expected = model(sample).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    difference = float(np.abs(session.run(None, {"images": sample.numpy()})[0] - expected).max())
    if difference > TOLERANCE:
        path.unlink()
        raise UserError(f"the ONNX model differs from PyTorch by {difference:.2e} (over {TOLERANCE:g}); nothing exported")
    recipe = embedding_recipe(store_path, pool, stretch, embedding.img_size, expected.shape[1])
    note = (f"`{ONNX_FILE}` computes steps 1-4 below in one model: give it the store's pixels as float32, "
            f"(N, H, W, C), in the store's scale; it returns the (N, {expected.shape[1]}) embedding.")
    recipe_path, readme_path = write_recipe(out_dir, recipe, readme(recipe, run.id, note, onnx_code(ONNX_FILE)))
    return {"out": str(out_dir), "model": str(path), "recipe": str(recipe_path), "readme": str(readme_path),
            "input": {"name": "images", "shape": ["N", *[int(s) for s in sample.shape[1:]]], "dtype": "float32"},
            "output": {"name": "embedding", "shape": ["N", int(expected.shape[1])]},
            "embedding_pool": pool, "max_abs_difference": difference}


def _export(model: torch.nn.Module, sample: torch.Tensor, path: Path) -> None:
    """Trace ``model`` on ``sample`` with a free batch axis and write the ONNX file atomically."""
    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.onnx.export(model, (sample,), dynamo=True, input_names=["images"], output_names=["embedding"],
                                    dynamic_shapes=({0: batch},), opset_version=OPSET, verbose=False)
    except Exception as exc:  # torch.export and the ONNX translation raise many types, each with a long report
        reason = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserError(f"PyTorch could not export this encoder to ONNX: {reason}") from None
    with atomic_path(path) as tmp:
        program.save(str(tmp))
