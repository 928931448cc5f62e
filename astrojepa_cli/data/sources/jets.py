"""Jet images in the ML4SCI quark/gluon HDF5 layout (Andrews et al. 2020, CMS Open Data).

``X_jets`` is N x 125 x 125 x C float32 (calorimeter and track deposits),
``y`` the class (0 or 1), and the optional ``m0`` (jet mass) and ``pt``
(transverse momentum) become regression targets. Pixels stay floating point:
the store keeps float32 (float16 with ``--float16``) and records per-channel
mean and standard deviation, which the loader uses to normalise each channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.sources.arrays import ArrayDataset, dataset_key, open_hdf5, write_arrays
from astrojepa_cli.data.store import StoreInfo

IMAGES_KEY = "X_jets"
LABELS_KEY = "y"
TARGET_KEYS = ("m0", "pt")


def import_jets(options: ImportOptions, path: Path) -> StoreInfo:
    """Stream an ML4SCI jet-image file into a float store with ``m0``/``pt`` targets when present."""
    path = Path(path)
    provenance = {"source": "jets", "origin": str(path.resolve()),
                  "citation": "Andrews et al. 2020, NIM A 977, 164304 (ML4SCI end-to-end quark/gluon jet images)"}
    with open_hdf5(path) as handle:
        for key in (IMAGES_KEY, LABELS_KEY):
            dataset_key(handle, key, None, "dataset", path)
        targets = {key: np.asarray(handle[key], dtype=np.float32).reshape(-1) for key in TARGET_KEYS if key in handle}
        data = ArrayDataset(images=handle[IMAGES_KEY], labels=np.asarray(handle[LABELS_KEY]), targets=targets,
                            id_prefix=f"{path.stem}-")
        return write_arrays(options, data, provenance, path.name)
