"""Import-time preprocessing: centre crop and resize (channel selection lives in the sources)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from astrojepa_cli.errors import DataError


def check_crop(crop: float) -> None:
    if not 0.0 < crop <= 1.0:
        raise DataError(f"--crop must be a fraction in (0, 1], got {crop}")


def crop_box(width: int, height: int, crop: float) -> tuple[int, int, int, int]:
    """Centred square box covering ``crop`` of the shorter side."""
    side = max(1, int(round(min(width, height) * crop)))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def crop_resize_pil(image: Image.Image, crop: float, size: int) -> np.ndarray:
    """Centre-crop then resize (Lanczos, antialiased) one PIL image; returns H x W x C."""
    resized = image.crop(crop_box(image.width, image.height, crop)).resize((size, size), Image.LANCZOS)
    array = np.asarray(resized)
    return array[..., None] if array.ndim == 2 else array


def crop_resize_batch(images: np.ndarray, crop: float, size: int) -> np.ndarray:
    """Centre-crop then resize an N x H x W x C batch with antialiased bilinear interpolation.

    uint8 input stays uint8 (rounded); float input keeps its dtype.
    """
    n, height, width, channels = images.shape
    left, top, right, bottom = crop_box(width, height, crop)
    cropped = images[:, top:bottom, left:right, :]
    if cropped.shape[1] == size and cropped.shape[2] == size:
        return np.ascontiguousarray(cropped)
    tensor = torch.from_numpy(np.ascontiguousarray(cropped)).permute(0, 3, 1, 2).float()
    resized = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    resized = resized.permute(0, 2, 3, 1).numpy()
    if images.dtype == np.uint8:
        return np.clip(np.rint(resized), 0, 255).astype(np.uint8)
    return resized.astype(images.dtype)
