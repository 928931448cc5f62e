"""The embedding cache: computed once per (weights, store, feature options), reused by embed, similar,
anomalies, probe and plot --latent, invalidated by new weights or a changed store, listed and cleared by
``runs cache``, recovered when corrupt, and never holding random-weights features."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from astrojepa_cli import runs
from astrojepa_cli.evaluate import features as feature_extraction
from astrojepa_cli.runs import embedding_cache
from astrojepa_cli.runs.embedding_cache import EmbeddingCache
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cache-home")
    write_blob_store(root / "data" / "blobs.h5")
    return root


@pytest.fixture
def computed(monkeypatch) -> list[torch.nn.Module]:
    """The encoder of each pass of the store's images through an encoder."""
    calls: list[torch.nn.Module] = []
    original = feature_extraction._computed

    def counting(encoder, *args, **kwargs):
        calls.append(encoder)
        yield from original(encoder, *args, **kwargs)

    monkeypatch.setattr(feature_extraction, "_computed", counting)
    return calls


def is_trained(encoder: torch.nn.Module, trained: dict) -> bool:
    return all(torch.equal(value.cpu(), trained[name]) for name, value in encoder.state_dict().items())


def new_run(cli: Cli, home: Path, *options: str) -> runs.Run:
    run_id = cli.json("pretrain", "--data", "blobs", *FAST, *options, "--root", home)["run_id"]
    return runs.open_run(run_id, home)


def cached(cli: Cli, home: Path, run: runs.Run) -> list[dict]:
    return cli.json("runs", "cache", run.id, "--root", home)["entries"]


def embeddings_of(cli: Cli, home: Path, run: runs.Run, *options: str) -> np.ndarray:
    return load_file(cli.json("embed", run.id, *options, "--root", home)["path"])["embeddings"].numpy()


def test_the_second_similar_query_reads_the_cache(home, computed):
    cli = Cli()
    run = new_run(cli, home)
    computed.clear()
    first = cli.json("similar", run.id, "--id", "obj3", "--k", "5", "--root", home)
    assert len(computed) == 1
    [entry] = cached(cli, home, run)
    assert (entry["dataset"], entry["pool"], entry["tta"], entry["n"], entry["dim"]) == ("blobs", "mean", "none", 96, 192)
    array = run.dir / "cache" / "embeddings" / entry["key"] / "embeddings.npy"
    written = array.stat().st_mtime_ns

    second = cli.json("similar", run.id, "--id", "obj7", "--k", "5", "--root", home)
    again = cli.json("similar", run.id, "--id", "obj3", "--k", "5", "--root", home)
    assert len(computed) == 1 and array.stat().st_mtime_ns == written
    assert again["neighbours"] == first["neighbours"] and second["neighbours"] != first["neighbours"]
    encoder = runs.load_encoder(run)
    fresh = feature_extraction.extract(encoder, home / "data" / "blobs.h5")  # no cache: computed now
    np.testing.assert_array_equal(np.load(array), fresh.embeddings)


# A cached query by id, run as the console script runs it, then what it imported.
CACHED_QUERY = """
import sys
from astrojepa_cli.launcher import main
sys.argv = ["astrojepa", "similar", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted(name for name in ("torch", "sklearn", "timm") if name in sys.modules), file=sys.stderr)
"""


def test_a_cached_similar_query_loads_no_torch(home):
    """What keeps a second query fast: reading the cache needs neither torch nor scikit-learn."""
    cli = Cli()
    run = new_run(cli, home)
    first = cli.json("similar", run.id, "--id", "obj3", "--k", "5", "--root", home)
    query = [sys.executable, "-c", CACHED_QUERY, run.id, "--id", "obj3", "--k", "5", "--json", "--root", str(home)]
    done = subprocess.run(query, capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(done.stdout)["neighbours"] == first["neighbours"]


def test_embed_anomalies_probe_and_plot_share_one_entry_and_random_weights_stay_out(home, computed, tmp_path):
    cli = Cli()
    run = new_run(cli, home)
    computed.clear()
    embedded = embeddings_of(cli, home, run)
    cli.json("anomalies", run.id, "--top", "3", "--root", home)
    cli.json("plot", "run", run.id, "--latent", "pca", "--out", tmp_path, "--root", home)
    assert len(computed) == 1
    cli.json("probe", run.id, "--knn", "5", "--root", home)  # the random-weights twin is embedded, not cached
    trained = runs.load_encoder(run).state_dict()
    assert len(computed) > 1 and not any(is_trained(encoder, trained) for encoder in computed[1:])
    [entry] = cached(cli, home, run)
    np.testing.assert_array_equal(np.load(run.dir / "cache" / "embeddings" / entry["key"] / "embeddings.npy"),
                                  embedded)
    passes = len(computed)
    cli.json("probe", run.id, "--knn", "5", "--root", home)  # twin's score is in the manifest, features in the cache
    assert len(computed) == passes
    cli.json("probe", run.id, "--knn", "5", "--random-init", "--root", home)
    assert len(computed) > passes and len(cached(cli, home, run)) == 1
    cli.json("embed", run.id, "--pool", "last2", "--tta", "d4", "--root", home)
    assert {(e["pool"], e["tta"]) for e in cached(cli, home, run)} == {("mean", "none"), ("last2", "d4")}


def test_new_weights_get_a_new_key_and_the_old_entry_goes(home, computed):
    cli = Cli()
    run, other = new_run(cli, home), new_run(cli, home, "--seed", "7")
    before = embeddings_of(cli, home, run)
    [old] = cached(cli, home, run)
    shutil.copyfile(other.dir / "encoder.safetensors", run.dir / "encoder.safetensors")
    computed.clear()
    after = embeddings_of(cli, home, run)
    assert len(computed) == 1 and not np.allclose(after, before)
    np.testing.assert_allclose(after, embeddings_of(cli, home, other), atol=1e-6)
    [new] = cached(cli, home, run)
    weights = hashlib.sha256((run.dir / "encoder.safetensors").read_bytes()).hexdigest()
    assert new["key"] != old["key"] and new["parts"]["weights_sha256"] == weights


def test_a_changed_store_gets_a_new_key(tmp_path, computed):
    cli = Cli()
    write_blob_store(tmp_path / "data" / "blobs.h5")
    run = new_run(cli, tmp_path)
    before = embeddings_of(cli, tmp_path, run)
    [old] = cached(cli, tmp_path, run)
    (tmp_path / "data" / "blobs.h5").unlink()
    write_blob_store(tmp_path / "data" / "blobs.h5", seed=1)  # same name and shape, other pixels
    computed.clear()
    after = embeddings_of(cli, tmp_path, run)
    assert len(computed) == 1 and not np.allclose(after, before)
    [new] = cached(cli, tmp_path, run)  # the entry of the store's old content is gone: never readable again
    assert new["key"] != old["key"] and new["parts"]["store_sha256"] != old["parts"]["store_sha256"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove-record"])
def test_a_corrupt_entry_is_recomputed_with_a_warning(home, computed, damage):
    cli = Cli()
    run = new_run(cli, home)
    reference = embeddings_of(cli, home, run)
    [entry] = cached(cli, home, run)
    folder = run.dir / "cache" / "embeddings" / entry["key"]
    array = folder / "embeddings.npy"
    if damage == "truncate":
        array.write_bytes(array.read_bytes()[:-100])
    elif damage == "flip":
        data = bytearray(array.read_bytes())
        data[-5] ^= 0xFF
        array.write_bytes(bytes(data))
    else:
        (folder / "entry.json").unlink()
    computed.clear()
    result = cli("embed", run.id, "--json", "--root", home)
    assert "warning:" in result.stderr and "recomputing" in result.stderr
    assert len(computed) == 1
    np.testing.assert_array_equal(load_file(json.loads(result.stdout)["path"])["embeddings"].numpy(), reference)
    assert embedding_cache.entries(run.dir)[0]["sha256"] == hashlib.sha256(reference.tobytes()).hexdigest()


def test_runs_cache_lists_and_clears(home):
    cli = Cli()
    run = new_run(cli, home)
    assert cli.json("runs", "cache", run.id, "--root", home)["entries"] == []
    embeddings_of(cli, home, run)
    listed = cli.json("runs", "cache", run.id, "--root", home)["entries"]
    assert len(listed) == 1 and listed[0]["bytes"] > 96 * 192 * 4
    shown = cli("runs", "cache", run.id, "--root", home).stderr
    assert listed[0]["key"] in shown and "blobs" in shown
    cleared = cli.json("runs", "cache", run.id, "--clear", "--root", home)
    assert cleared["removed"] == [listed[0]["key"]]
    assert cli.json("runs", "cache", run.id, "--root", home)["entries"] == []
    assert not any((run.dir / "cache" / "embeddings").iterdir())


def test_two_writers_of_one_entry_leave_one_whole_entry(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings", "ab" * 32)
    options = {"store_sha256": "cd" * 32, "pool": "mean", "tta": "none", "stretch": "none"}
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(10, 4)).astype(np.float32), rng.normal(size=(10, 4)).astype(np.float32)
    with cache.writing(options, 10, {}) as one, cache.writing(options, 10, {}) as two:
        for start in (0, 5):  # interleaved chunks of the two writers
            one.add(first[start : start + 5])
            two.add(second[start : start + 5])
    [entry] = embedding_cache.entries(tmp_path)
    # The inner block ends first, so its rename wins; the outer writer's copy is dropped.
    np.testing.assert_array_equal(cache.load(options, 10), second)
    assert entry["sha256"] == hashlib.sha256(second.tobytes()).hexdigest()
    assert not [p for p in (tmp_path / "cache" / "embeddings").iterdir() if p.name.startswith(".")]
    assert cache.load({**options, "pool": "last2"}, 10) is None and cache.load(options, 11) is None


def test_an_interrupted_pass_caches_nothing(home):
    run = new_run(Cli(), home)
    encoder = runs.load_encoder(run)
    chunks = feature_extraction.iter_embeddings(encoder, home / "data" / "blobs.h5", chunk=40,
                                                cache=EmbeddingCache.of_run(run))
    next(chunks)
    chunks.close()
    assert embedding_cache.entries(run.dir) == []
    assert not [p for p in (run.dir / "cache" / "embeddings").iterdir()]


def test_weights_rewritten_while_embedding_are_not_cached(home):
    cli = Cli()
    run, other = new_run(cli, home), new_run(cli, home, "--seed", "7")
    cache = EmbeddingCache.of_run(run)  # as the commands make it: before loading the encoder
    encoder = runs.load_encoder(run)
    shutil.copyfile(other.dir / "encoder.safetensors", run.dir / "encoder.safetensors")  # a checkpoint lands
    feature_extraction.extract(encoder, home / "data" / "blobs.h5", cache=cache)
    assert embedding_cache.entries(run.dir) == []
