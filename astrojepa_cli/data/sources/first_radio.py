"""FIRST radio galaxies shipped inside the ``firstgalaxydata`` package (Griese et al. 2023).

2,158 labelled 300×300 greyscale cutouts from the VLA FIRST survey in four
classes (FRI, FRII, Compact, Bent) with the literature train/valid/test split.
The package ships the HDF5 file inside a zip; we read it from there without
importing the package (which would pull in astropy and torchvision).
"""

from __future__ import annotations

import importlib.util
import tempfile
import zipfile
from pathlib import Path

import h5py
import numpy as np

from astrojepa_cli.data.preprocess import check_crop, crop_resize_batch
from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.store import StoreInfo
from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.errors import DataError

CLASS_NAMES = ["FRI", "FRII", "Compact", "Bent"]
ARCHIVE = "galaxy_data_h5.zip"
MEMBER = "galaxy_data_h5.h5"
CHUNK = 256


def packaged_archive() -> Path:
    spec = importlib.util.find_spec("firstgalaxydata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the 'firstgalaxydata' package is not installed; run 'pip install firstgalaxydata'")
    archive = Path(list(spec.submodule_search_locations)[0]) / ARCHIVE
    if not archive.exists():
        raise DataError(f"firstgalaxydata is installed but {archive} is missing; reinstall it")
    return archive


def import_first_radio(options: ImportOptions) -> StoreInfo:
    check_crop(options.crop)
    archive = packaged_archive()
    provenance = {
        "source": "first-radio",
        "origin": f"firstgalaxydata package ({archive.name}), Zenodo record 7689127",
        "citation": "Griese et al. 2023, Data in Brief 47, 108974",
        "preprocessing": {"crop": options.crop, "size": options.size},
        "split": "literature split shipped with the data (Split_literature)",
    }
    options.store.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=options.store.parent) as scratch:
        try:
            with zipfile.ZipFile(archive) as bundle:
                extracted = Path(bundle.extract(MEMBER, scratch))
        except (zipfile.BadZipFile, KeyError) as exc:
            raise DataError(f"{archive} is corrupt ({exc}); reinstall firstgalaxydata") from None
        with h5py.File(extracted, "r") as source:
            keys = sorted(source.keys(), key=lambda k: int(k.split("_")[-1]))
            with StoreWriter(options.store, name=options.name, image_shape=(options.size, options.size, 1),
                             dtype=np.uint8, class_names=CLASS_NAMES, provenance=provenance) as writer:
                for start in range(0, len(keys), CHUNK):
                    batch = keys[start : start + CHUNK]
                    images = np.stack([source[k]["Img"][()] for k in batch])[..., None]
                    labels = [int(source[k]["Label_literature"][()]) for k in batch]
                    splits = [source[k]["Split_literature"].asstr()[()] for k in batch]
                    writer.append(crop_resize_batch(images, options.crop, options.size), labels, batch, splits)
                return writer.finish(options.seed)
