"""The bad-input catalogue, data in: stores and imports, configs and flags, devices.

Each case is a real CLI invocation on real files, run and checked by :mod:`tests.bad_input_catalogue`.
"""

from __future__ import annotations

import shutil
from typing import Callable

import h5py
import numpy as np

from tests.bad_input_catalogue import catalogue_tests, TINY, Case, Env, file_setup, no_new_run, npz_setup, says
from tests.conftest import TINY_PRETRAIN


def _store_with(env: Env, name: str, edit: Callable[[h5py.File], None]) -> None:
    """A copy of the base store with one edit, written with h5py as a foreign tool would."""
    target = env.home / "data" / f"{name}.h5"
    shutil.copy(env.home / "data" / "blobs.h5", target)
    with h5py.File(target, "r+") as handle:
        edit(handle)


def _float_pixels(value: float) -> Callable[[h5py.File], None]:
    def edit(handle: h5py.File) -> None:
        pixels = handle["images"][:].astype(np.float32)
        pixels[5, 3, 3, 0] = value
        del handle["images"]
        handle.create_dataset("images", data=pixels)

    return edit


def _drop_attrs(handle: h5py.File) -> None:
    for key in list(handle.attrs):
        del handle.attrs[key]


def _flatten_images(handle: h5py.File) -> None:
    pixels = handle["images"][:, :, :, 0]
    del handle["images"]
    handle.create_dataset("images", data=pixels)


def _tamper_label(handle: h5py.File) -> None:
    handle["labels"][0] = (handle["labels"][0] + 1) % 3


def _truncated_npz(env: Env) -> None:
    npz_setup(np.zeros((8, 16, 16), dtype=np.uint8))(env)
    data = (env.tmp / "arrays.npz").read_bytes()
    (env.tmp / "arrays.npz").write_bytes(data[: len(data) // 2])


def _catalog_without_images(env: Env) -> None:
    folder = env.tmp / "cat"
    folder.mkdir()
    (folder / "catalog.csv").write_text("file,label\nmissing-1.png,a\nmissing-2.png,b\n")


CASES = [
    # stores and imports
    Case("missing-store", ("pretrain", "--data", "nope", *TINY_PRETRAIN)),
    Case("truncated-store", ("fetch-data", "verify", "torn"),
         setup=lambda env: (env.home / "data" / "torn.h5").write_bytes((env.home / "data" / "blobs.h5").read_bytes()[:2000])),
    Case("store-not-hdf5", ("pretrain", "--data", "text", *TINY_PRETRAIN),
         setup=lambda env: (env.home / "data" / "text.h5").write_text("not a store")),
    Case("store-missing-attributes", ("probe", "{run}", "--data", "bare"),
         setup=lambda env: _store_with(env, "bare", _drop_attrs)),
    Case("store-nan-pixels", ("probe", "{run}", "--data", "nanpix"),
         setup=lambda env: _store_with(env, "nanpix", _float_pixels(float("nan")))),
    Case("store-inf-pixels", ("anomalies", "{run}", "--data", "infpix"),
         setup=lambda env: _store_with(env, "infpix", _float_pixels(float("inf")))),
    Case("store-images-without-channels", ("embed", "{run}", "--data", "flat"),
         setup=lambda env: _store_with(env, "flat", _flatten_images), invented=True),
    Case("store-tampered", ("fetch-data", "verify", "tampered"),
         setup=lambda env: _store_with(env, "tampered", _tamper_label)),
    Case("empty-folder", ("fetch-data", "folder", "{tmp}/empty", "--name", "e"),
         setup=lambda env: (env.tmp / "empty").mkdir()),
    Case("catalog-rows-without-images", ("fetch-data", "folder", "{tmp}/cat", "--name", "c"),
         setup=_catalog_without_images),
    Case("npz-wrong-shape", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w"),
         setup=npz_setup(np.zeros(5, dtype=np.uint8))),
    Case("npz-nan-pixels", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w"),
         setup=npz_setup(np.full((4, 16, 16), np.nan, dtype=np.float32))),
    Case("npz-truncated", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "w"), setup=_truncated_npz),
    Case("verify-without-name", ("fetch-data", "verify")),
    Case("fetch-name-taken", ("fetch-data", "npz", "{tmp}/arrays.npz", "--name", "blobs"),
         setup=npz_setup(np.zeros((4, 16, 16), dtype=np.uint8)), after=says("pass --force to replace it")),
    Case("batch-larger-than-data", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--batch-size", "512"),
         after=no_new_run),
    # configs and flags
    Case("config-wrong-type", ("pretrain", "--config", "{tmp}/c.json", "--data", "blobs"),
         setup=file_setup("c.json", '{"lr": "fast"}'), after=no_new_run),
    Case("config-float-epochs", ("pretrain", "--config", "{tmp}/c.toml", "--data", "blobs"),
         setup=file_setup("c.toml", "epochs = 1.5\n"), after=no_new_run),
    Case("config-bool-for-int", ("pretrain", "--config", "{tmp}/c.json", "--data", "blobs"),
         setup=file_setup("c.json", '{"seed": true}'), invented=True),
    Case("config-three-scale-numbers", ("pretrain", "--config", "{tmp}/c.json", "--data", "blobs"),
         setup=file_setup("c.json", '{"global_scale": [0.1, 0.5, 1.0]}'), invented=True),
    Case("config-unknown-key", ("pretrain", "--config", "{tmp}/c.json"), setup=file_setup("c.json", '{"learning_rate": 1}')),
    Case("config-unparsable", ("pretrain", "--config", "{tmp}/c.toml"), setup=file_setup("c.toml", "epochs = = 3")),
    Case("config-missing", ("pretrain", "--config", "{tmp}/none.toml")),
    Case("patch-does-not-divide-image", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--patch-size", "5"),
         after=no_new_run),
    Case("patch-size-zero", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--patch-size", "0"), after=no_new_run),
    Case("patch-does-not-divide-view", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--global-size", "14"),
         after=no_new_run, invented=True),
    Case("zero-epochs", ("pretrain", "--data", "blobs", *TINY_PRETRAIN, "--epochs", "0")),
    Case("unknown-arch", ("pretrain", "--data", "blobs", "--arch", "vit-xxl")),
    Case("unknown-loss", ("pretrain", "--data", "blobs", "--loss", "lejepa2")),
    Case("unknown-masker", ("pretrain", "--data", "blobs", "--loss", "ijepa", "--masker", "nope")),
    # devices
    Case("device-foo-pretrain", ("pretrain", *TINY, "--device", "foo"), after=no_new_run),
    Case("log-unknown-tracker", ("pretrain", *TINY, "--log", "tensorboard", "--log", "neptune"), after=no_new_run,
         invented=True),
    Case("device-foo-embed", ("embed", "{run}", "--device", "foo")),
    Case("device-foo-probe", ("probe", "{run}", "--device", "foo")),
    Case("device-foo-anomalies", ("anomalies", "{run}", "--device", "foo")),
    Case("device-foo-plot", ("plot", "{run}", "--device", "foo")),
    Case("device-foo-similar", ("similar", "{run}", "--id", "obj1", "--device", "foo")),
    Case("device-malformed-index", ("embed", "{run}", "--device", "cuda:x"), invented=True),
]


base_home, test_bad_input = catalogue_tests(CASES)
