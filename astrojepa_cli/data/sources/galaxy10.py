"""Galaxy10 (Leung & Bovy 2019): galaxy images in ten Galaxy Zoo morphology classes.

Both releases are one HDF5 file with ``images`` (N x H x W x 3 uint8, g/r/z or
g/r/i colour composites) and ``ans`` (N class indices); the DECaLS file also
holds ``ra``, ``dec``, ``redshift`` and ``pxscale``. Neither has an official
split, so a seeded stratified split is made. The file is downloaded over HTTPS
(resumable, checked against the SHA-256 that astroNN publishes for it) or taken
from ``--file``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrojepa_cli.data.download import Checksums, download, file_checksums
from astrojepa_cli.data.sources import ImportOptions
from astrojepa_cli.data.sources.arrays import ArrayDataset, dataset_key, open_hdf5, write_arrays
from astrojepa_cli.data.store import StoreInfo
from astrojepa_cli.errors import DataError

TARGET_KEYS = ("redshift",)


@dataclass(frozen=True)
class Release:
    """One Galaxy10 file as astroNN publishes it on Zenodo, and what is known about it."""

    name: str
    zenodo_record: int
    filename: str
    sha256: str
    n_images: int
    image_size: int
    class_names: tuple[str, ...]
    sources: str  # where the images and the labels come from

    @property
    def url(self) -> str:
        return f"https://zenodo.org/records/{self.zenodo_record}/files/{self.filename}"

    @property
    def checksums(self) -> Checksums:
        return Checksums(sha256=self.sha256)

    @property
    def citation(self) -> str:
        return f"Leung & Bovy 2019, MNRAS 483, 3255; {self.sources}"

    @property
    def licence(self) -> str:
        return f"MIT (astroNN); see the Zenodo record {self.zenodo_record}"


DECALS_CLASSES = ("Disturbed", "Merging", "Round Smooth", "In-between Round Smooth", "Cigar Shaped Smooth",
                  "Barred Spiral", "Unbarred Tight Spiral", "Unbarred Loose Spiral", "Edge-on without Bulge",
                  "Edge-on with Bulge")
SDSS_CLASSES = ("Disk, Face-on, No Spiral", "Smooth, Completely round", "Smooth, in-between round",
                "Smooth, Cigar shaped", "Disk, Edge-on, Rounded Bulge", "Disk, Edge-on, Boxy Bulge",
                "Disk, Edge-on, No Bulge", "Disk, Face-on, Tight Spiral", "Disk, Face-on, Medium Spiral",
                "Disk, Face-on, Loose Spiral")
RELEASES = {release.name: release for release in (
    Release("galaxy10-decals", 10845026, "Galaxy10_DECals.h5",
            "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571", 17736, 256, DECALS_CLASSES,
            "images: DESI Legacy Imaging Surveys (Dey et al. 2019); "
            "labels: Galaxy Zoo DECaLS (Walmsley et al. 2022) and Galaxy Zoo 2 (Willett et al. 2013)"),
    Release("galaxy10-sdss", 10844811, "Galaxy10.h5",
            "969a6b1cefcc36e09fffa86febd2f699a4aa19b837ba0427f01b0bc6ded458af", 21785, 69, SDSS_CLASSES,
            "images: SDSS; labels: Galaxy Zoo 2 (Willett et al. 2013)"),
)}


def import_galaxy10(options: ImportOptions, release: Release, url: str | None = None, md5: str | None = None,
                    file: Path | None = None) -> StoreInfo:
    """Download (or take ``file``), check and stream one Galaxy10 release into a store."""
    # --md5 replaces the published checksum; a mirror given by --url alone must serve the published file.
    expected = Checksums(md5=md5.lower()) if md5 else release.checksums
    if file is not None:
        if url is not None:
            raise DataError("give either --file or --url, not both")
        path = Path(file)
        if not path.is_file():
            raise DataError(f"file not found: {path}")
        actual = file_checksums(path)
        problems = expected.mismatches(actual)
        if problems and md5:
            raise DataError(f"{path} does not match --md5 ({'; '.join(problems)})")
        if problems:
            options.warnings.append(f"{path.name} differs from the published {release.name} file; importing it anyway")
        origin = str(path.resolve())
    else:
        origin = url or release.url
        path = options.store.parent / "downloads" / release.filename
        actual = download(origin, path, expected)
    provenance = {"source": release.name, "origin": origin, "checksums": actual.to_json(),
                  "published_checksums": release.checksums.to_json(),
                  "matches_published": not release.checksums.mismatches(actual),
                  "citation": release.citation, "licence": release.licence}
    with open_hdf5(path) as handle:
        for key in ("images", "ans"):
            dataset_key(handle, key, None, "dataset", path)
        targets = {key: np.asarray(handle[key], dtype=np.float32) for key in TARGET_KEYS if key in handle}
        data = ArrayDataset(images=handle["images"], labels=np.asarray(handle["ans"]),
                            class_names=list(release.class_names), targets=targets, id_prefix=f"{release.name}-")
        return write_arrays(options, data, provenance, path.name)
