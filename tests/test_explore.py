"""``astrojepa explore``: the latent-space explorer page, loaded and used in a real headless Chromium.

One tiny store with a sky catalogue, one two-step run and one page are shared by the module's tests.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astrojepa_cli.data import store
from astrojepa_cli.data.store_writer import StoreWriter
from astrojepa_cli.evaluate.explore.explorer_data import nearest_others
from astrojepa_cli.evaluate.explore.explorer_server import explorer_server
from astrojepa_cli.evaluate.explore.similarity import nearest
from astrojepa_cli.evaluate.explore.thumbnails import (
    MIN_SIDE, SIDE, ThumbnailReader, data_uri, inline_thumbnails, side_for_budget, thumbnail_png,
)
from tests.browser import (
    DEEP_QUERY, HOVERED_THUMBNAIL, POINTS, chromium, errors, isolated_point, pointer, wait_for, wait_for_bokeh,
)
from tests.conftest import TINY_PRETRAIN, Cli, write_blob_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from explore_scale import write_blob_survey  # noqa: E402

N = 96


def write_sky_store(path: Path) -> None:
    """The blob store again, with a catalogue: ra, dec (degrees), a magnitude and a survey name."""
    write_blob_store(path.with_name("plain.h5"))
    blobs = store.load(path.with_name("plain.h5"))
    rng = np.random.default_rng(1)
    columns = {"ra": rng.uniform(140, 160, N), "dec": rng.uniform(-5, 5, N), "mag": rng.uniform(14, 20, N),
               "survey": np.where(np.arange(N) % 4 == 0, "deep", "wide")}
    with StoreWriter(path, name="sky", image_shape=blobs.images.shape[1:], dtype=np.uint8,
                     class_names=["round", "elongated", "double"], provenance={"source": "test"},
                     column_names=list(columns)) as writer:
        writer.append(blobs.images, blobs.labels, list(blobs.ids), list(blobs.split), columns=columns)
        writer.finish()
    path.with_name("plain.h5").unlink()


@pytest.fixture(scope="module")
def explored(tmp_path_factory) -> dict:
    """A home with the sky store, a two-step run with an anomalies record, and its explorer page."""
    home = tmp_path_factory.mktemp("explore") / "home"
    write_sky_store(home / "data" / "sky.h5")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASTROJEPA_HOME", str(home))
        cli = Cli()
        run = cli.json("pretrain", "--data", "sky", *TINY_PRETRAIN, "--max-steps", "2")["run_id"]
        anomalies = cli.json("anomalies", run, "--top", "5")
        page = cli.json("explore", run, "--method", "pca", "--k", "6", "--top", "5")
        neighbours = {object_id: [n["id"] for n in cli.json("similar", run, "--id", object_id, "--k", "6")["neighbours"]]
                      for object_id in ("obj0", "obj1", "obj2")}
    return {"home": home, "run": run, "page": page, "anomalies": anomalies, "similar": neighbours}


@pytest.fixture(scope="module")
def browser(explored, tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    driver = chromium(downloads)
    driver.downloads = downloads
    driver.get(Path(explored["page"]["path"]).as_uri())
    wait_for_bokeh(driver)
    yield driver
    driver.quit()


def _select(driver, rows: list[int]) -> None:
    driver.execute_script(f"{POINTS}.selected.indices = arguments[0];", rows)


def _neighbour_ids(driver) -> list[str]:
    text = wait_for(driver, "const t = Bokeh.documents[0].get_model_by_name('neighbours').text;"
                            "return t.includes('aj-item') ? t : '';")
    return re.findall(r'class="aj-item" data-id="([^"]+)"', text)


def test_the_page_is_one_offline_file_and_says_how_it_was_made(explored):
    html = Path(explored["page"]["path"]).read_text()
    assert explored["page"]["n"] == N and explored["page"]["method"] == "PCA"
    assert not re.search(r"<(script|link)[^>]+(src|href)=", html)  # BokehJS inline, nothing fetched
    assert html.count("data:image/png;base64,") >= N
    assert "PCA of the standardised embeddings" in html
    assert "as recorded by 'astrojepa anomalies'" in explored["page"]["scores"]


def test_the_map_draws_every_object_without_console_errors(browser):
    assert browser.execute_script(f"return {POINTS}.data.x.length") == N
    assert browser.execute_script("return Bokeh.documents[0].get_model_by_name('map').output_backend") == "webgl"
    assert errors(browser) == []
    screenshot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
    assert screenshot.std() > 20 and len(np.unique(screenshot.reshape(-1, 3), axis=0)) > 50


def test_hovering_a_point_shows_its_thumbnail_and_catalogue(browser, explored):
    row, (x, y) = isolated_point(browser)
    pointer(browser, x, y)
    tip = wait_for(browser, DEEP_QUERY + "const tips = deepQueryAll(document, '.aj-tip');"
                   "return tips.length ? [tips[0].querySelector('img').src, tips[0].innerText] : null;")
    image = store.load(explored["home"] / "data" / "sky.h5").images[row]
    side = explored["page"]["thumbnail_px"]
    assert tip[0] == data_uri(thumbnail_png(image, side))
    assert f"obj{row}" in tip[1].split() and "ra:" in tip[1] and "survey:" in tip[1]
    pointer(browser, 5, 5)


def test_clicking_a_point_shows_the_neighbours_similar_finds(browser, explored, monkeypatch):
    _select(browser, [])
    row, (x, y) = isolated_point(browser)
    pointer(browser, x, y, click=True)
    assert browser.execute_script(f"return {POINTS}.selected.indices") == [row]
    monkeypatch.setenv("ASTROJEPA_HOME", str(explored["home"]))
    found = Cli().json("similar", explored["run"], "--id", f"obj{row}", "--k", "6")["neighbours"]
    assert _neighbour_ids(browser) == [neighbour["id"] for neighbour in found]
    text = browser.execute_script("return Bokeh.documents[0].get_model_by_name('neighbours').text")
    assert "legacysurvey.org/viewer?ra=" in text and "&amp;dec=" in text
    assert errors(browser) == []
    pointer(browser, 5, 5)


def test_every_objects_gallery_holds_the_ids_similar_returns(browser, explored):
    for object_id, expected in explored["similar"].items():
        _select(browser, [int(object_id.removeprefix("obj"))])
        assert _neighbour_ids(browser) == expected


def test_a_selection_downloads_its_ids_as_csv(browser):
    rows = [3, 50, 7, 91]
    _select(browser, rows)
    assert browser.execute_script("return Bokeh.documents[0].get_model_by_name('selection-count').text") \
        == "4 objects selected"
    browser.execute_script(DEEP_QUERY + "deepQueryAll(document, 'button').find("
                           "b => b.textContent.includes('Download the selected ids')).click();")
    target = browser.downloads / "selection.csv"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with open(target, newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["id"] for r in records] == [f"obj{row}" for row in rows]
    assert {"label", "anomaly_score", "ra", "dec"} <= set(records[0])


def test_searching_an_id_selects_and_centres_it(browser):
    browser.execute_script("Bokeh.documents[0].get_model_by_name('search').value = 'obj42';")
    assert browser.execute_script(f"return {POINTS}.selected.indices") == [42]
    centre, x = browser.execute_script(
        "const m = Bokeh.documents[0].get_model_by_name('map');"
        f"return [(m.x_range.start + m.x_range.end) / 2, {POINTS}.data.x[42]];")
    assert centre == pytest.approx(x, abs=1e-6)
    browser.execute_script("Bokeh.documents[0].get_model_by_name('search').value = 'no-such-object';")
    assert "no object with id no-such-object" in browser.execute_script(
        "return Bokeh.documents[0].get_model_by_name('neighbours').text")


def test_the_anomaly_list_is_the_recorded_ranking_and_centres_the_map(browser, explored):
    top = browser.execute_script("return Bokeh.documents[0].get_model_by_name('top-anomalies').data.id")
    assert list(top) == [record["id"] for record in explored["anomalies"]["top"]]
    browser.execute_script("Bokeh.documents[0].get_model_by_name('top-anomalies').selected.indices = [1];")
    assert browser.execute_script(f"return {POINTS}.selected.indices") == [int(top[1].removeprefix("obj"))]


def test_neighbours_leave_the_object_out_and_follow_the_search_of_similar():
    embeddings = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    rows, similarities = nearest_others(embeddings, 5)
    for row in range(len(embeddings)):
        expected, expected_similarities = nearest(embeddings, embeddings[row], 6)
        keep = expected != row
        assert rows[row].tolist() == expected[keep][:5].tolist() and row not in rows[row]
        assert similarities[row] == pytest.approx(expected_similarities[keep][:5], abs=1e-5)


def test_inline_thumbnails_shrink_to_fit_the_page_budget(tmp_path):
    path = tmp_path / "survey.h5"
    write_blob_survey(path, 60, side=48)
    full = sum(len(uri) for uri in inline_thumbnails(path, SIDE))
    side = side_for_budget(path, full // 3)
    assert MIN_SIDE <= side < SIDE and side_for_budget(path, full) == SIDE
    assert sum(len(uri) for uri in inline_thumbnails(path, side)) <= full // 3


def test_colouring_by_a_catalog_column(explored, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROJEPA_HOME", str(explored["home"]))
    for column, model in (("mag", '"type":"object","name":"ColorBar"'), ("survey", '"name":"CategoricalColorMapper"')):
        result = Cli().json("explore", explored["run"], "--method", "pca", "--color-by", column,
                            "--out", str(tmp_path / f"{column}.html"))
        assert result["colour_by"] == column
        assert model in (tmp_path / f"{column}.html").read_text()


def test_serve_sends_the_page_and_thumbnails_on_demand(explored, browser):
    environment = {**os.environ, "ASTROJEPA_HOME": str(explored["home"]), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "astrojepa_cli", "explore", explored["run"], "--method", "pca",
                                "--serve", "--port", "0", "--json"], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        url = json.loads(process.stdout.readline())["url"]
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        expected = thumbnail_png(store.load(explored["home"] / "data" / "sky.h5").images[5])
        assert "/thumb/5.png" in page and data_uri(expected) not in page
        assert urllib.request.urlopen(url + "thumb/5.png", timeout=30).read() == expected
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + f"thumb/{N}.png", timeout=30)
        browser.get(url)
        wait_for_bokeh(browser)
        row, (x, y) = isolated_point(browser)
        pointer(browser, x, y)
        loaded = wait_for(browser, HOVERED_THUMBNAIL)
        assert loaded == url + f"thumb/{row}.png"
        assert errors(browser) == []
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def test_a_browser_leaving_mid_reply_prints_nothing_but_other_errors_still_show(explored, capsys):
    server = explorer_server(ThumbnailReader(explored["home"] / "data" / "sky.h5"), 0)
    try:
        for failure in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset"), ValueError("boom")):
            try:
                raise failure
            except Exception:
                server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    printed = capsys.readouterr().err
    assert "Broken pipe" not in printed and "reset" not in printed and "ValueError: boom" in printed
