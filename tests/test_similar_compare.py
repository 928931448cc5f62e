"""``similar`` (by id and by image file) and ``runs compare`` (config differences, evaluations, Spearman)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from astrojepa_cli.data import store
from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.evaluate.explore.similarity import QUERY_CHUNK, nearest, nearest_many
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

LAMBDAS = ("0.02", "0.3", "0.9")
FAST = ("--epochs", "1", "--max-steps", "2", *TINY_PRETRAIN, "--local-views", "0")


def write_subtle_store(path: Path, n: int = 96, size: int = 16) -> None:
    """Narrow and wide faint blobs under heavy noise: hard enough that probe scores differ between runs."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    sigmas = np.where(np.arange(n) % 2 == 0, 2.0, 2.5)
    images = [120 * np.exp(-(x**2 + y**2) / (2 * s**2)) + rng.normal(30, 25, (size, size)) for s in sigmas]
    with StoreWriter(path, name="subtle", image_shape=(size, size, 1), dtype=np.uint8,
                     class_names=["narrow", "wide"], provenance={"source": "test"}) as writer:
        writer.append(np.clip(np.stack(images), 0, 255).astype(np.uint8)[..., None], list(np.arange(n) % 2),
                      [f"s{i}" for i in range(n)], ["train"] * 64 + ["test"] * 32)
        writer.finish()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Cli, Path, list[str]]:
    """A λ sweep of three tiny runs on the subtle store; the blob store is there to search."""
    root = tmp_path_factory.mktemp("compare-home")
    write_subtle_store(root / "data" / "subtle.h5")
    write_blob_store(root / "data" / "blobs.h5")
    cli = Cli()
    made = [cli.json("pretrain", "--data", "subtle", *FAST, "--lam", lam, "--seed", str(i), "--root", root)["run_id"]
            for i, lam in enumerate(LAMBDAS)]
    return cli, root, made


def test_nearest_matches_brute_force_cosine():
    rng = np.random.default_rng(0)
    embeddings, query = rng.normal(size=(50, 6)), rng.normal(size=6)
    rows, similarities = nearest(embeddings, query, 5)
    cosine = embeddings @ query / (np.linalg.norm(embeddings, axis=1) * np.linalg.norm(query))
    np.testing.assert_array_equal(rows, np.argsort(-cosine)[:5])
    np.testing.assert_allclose(similarities, np.sort(cosine)[::-1][:5], atol=1e-6)


def test_nearest_many_in_chunks_matches_brute_force_and_breaks_ties_by_row():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(300, 4))
    embeddings[7] = embeddings[3] * 2.0  # same direction as row 3: a tie at every query
    queries = rng.normal(size=(QUERY_CHUNK + 40, 4))  # more than one chunk
    rows, similarities = nearest_many(embeddings, queries, 6)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    expected = np.argsort(-cosine, axis=1, kind="stable")[:, :6]
    np.testing.assert_allclose(similarities, np.take_along_axis(cosine, expected, axis=1), atol=1e-5)
    for found, wanted in zip(rows, expected):
        if 3 in wanted and 7 in wanted:  # the tied pair comes lower row first
            assert list(found).index(3) < list(found).index(7)
    all_rows, _ = nearest_many(embeddings[:5], queries[:2], 10)  # k beyond N: every row, ranked
    assert all_rows.shape == (2, 5) and sorted(all_rows[0]) == [0, 1, 2, 3, 4]


def test_similar_by_id_lists_neighbours_and_writes_a_mosaic(sweep):
    cli, root, made = sweep
    result = cli.json("similar", made[0], "--data", "blobs", "--id", "obj5", "--k", "5",
                      "--root", root)
    neighbours = result["neighbours"]
    assert len(neighbours) == 5 and "obj5" not in {n["id"] for n in neighbours}
    similarities = [n["similarity"] for n in neighbours]
    assert similarities == sorted(similarities, reverse=True) and similarities[0] <= 1.0 + 1e-6
    # obj5 is a double blob; its nearest neighbours in embedding space are mostly double blobs too.
    assert sum(n["label"] == "double" for n in neighbours) >= 3
    assert Path(result["mosaic"]).read_bytes()[:4] == b"\x89PNG"


def test_similar_by_image_file_finds_the_same_object(sweep, tmp_path):
    cli, root, made = sweep
    pixels = store.load(root / "data" / "blobs.h5").images[7, ..., 0]
    Image.fromarray(pixels).save(tmp_path / "query.png")
    result = cli.json("similar", made[0], "--data", "blobs", "--image", tmp_path / "query.png", "--k", "3",
                      "--root", root)
    assert result["query"] == "query"
    assert result["neighbours"][0]["id"] == "obj7" and result["neighbours"][0]["similarity"] > 0.999


@pytest.mark.parametrize("args", [[], ["--id", "obj1", "--image", "x.png"], ["--id", "nope"], ["--image", "missing.png"],
                                  ["--id", "obj1", "--k", "0"]])
def test_bad_similar_requests_are_one_line_errors(sweep, args):
    cli, root, made = sweep
    result = cli("similar", made[0], "--data", "blobs", *args, "--root", root, expect=2)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


def test_runs_compare_table_and_spearman(sweep):
    cli, root, made = sweep
    cli("runs", "compare", *made, "--spearman", "--root", root, expect=2)  # not probed yet
    for run in made:
        cli.json("probe", run, "--knn", "1", "--root", root)
    comparison = cli.json("runs", "compare", *made, "--spearman", "--evaluation", "subtle/knn-1", "--root", root)
    assert comparison["runs"] == made
    assert comparison["config_differences"]["lam"] == [float(lam) for lam in LAMBDAS]
    assert comparison["config_differences"]["seed"] == [0, 1, 2]
    assert "arch" not in comparison["config_differences"]
    assert len(comparison["evaluations"]["subtle/knn-1"]["values"]) == 3
    result = comparison["spearman"]
    assert len(set(result["values"])) > 1 and result["metric"] == "accuracy"
    expected = spearmanr(result["final_loss"], result["values"]).statistic
    assert result["n"] == 3 and result["rho"] == pytest.approx(expected)
    assert result["final_loss"] == comparison["final_loss"]


def test_runs_compare_needs_two_runs_and_spearman_three(sweep):
    cli, root, made = sweep
    cli("runs", "compare", made[0], "--root", root, expect=2)
    cli("runs", "compare", *made[:2], "--spearman", "--root", root, expect=2)
