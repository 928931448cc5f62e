"""A real headless Chromium for page tests (Debian's chromium and chromedriver, driven by Selenium),
and the few JavaScript probes the explorer tests read a Bokeh page with."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Bokeh renders its widgets and tooltips inside shadow roots; this finds elements across them.
DEEP_QUERY = """
function deepQueryAll(root, selector, found = []) {
  found.push(...root.querySelectorAll(selector));
  for (const element of root.querySelectorAll("*")) {
    if (element.shadowRoot) deepQueryAll(element.shadowRoot, selector, found);
  }
  return found;
}
"""

# The first view of a model named NAME among the document's rendered views.
VIEW_OF = """
function viewOf(name) {
  const queue = [...Bokeh.index.roots ?? Object.values(Bokeh.index)];
  while (queue.length) {
    const view = queue.shift();
    if (view.model.name === name) return view;
    queue.push(...(view.child_views ?? []), ...(view.renderer_views?.values?.() ?? []));
  }
  return null;
}
"""


def chromium(download_dir: Path, width: int = 1400, height: int = 1000):
    """A headless Chromium (no sandbox, as CI runs as root) that logs the console and saves downloads into
    ``download_dir``. Where chromium, chromedriver or selenium is missing the test is skipped, except
    under CI (``CI`` set, as .ci/run runs), where the page tests must run: there it fails."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = binary is None or not CHROMEDRIVER.exists() or importlib.util.find_spec("selenium") is None
    if missing:
        message = "chromium, chromium-driver or selenium is missing (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def wait_for(driver, script: str, timeout: float = 30.0, poll: float = 0.05):
    """Poll ``script`` (a JS expression's body, which returns a value) until it is truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {script}")
        time.sleep(poll)


def wait_for_bokeh(driver, timeout: float = 30.0) -> float:
    """Wait until the page's Bokeh document is rendered and idle; the time since navigation began, in seconds."""
    return wait_for(driver, "return window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle "
                            "? performance.now() / 1000 : 0", timeout)


def errors(driver) -> list[dict]:
    """The browser console's messages of level SEVERE since the last call."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


POINTS = "Bokeh.documents[0].get_model_by_name('points')"
# The source of the hover tooltip's thumbnail once it has loaded, else null.
HOVERED_THUMBNAIL = DEEP_QUERY + ("const img = deepQueryAll(document, '.aj-tip img')[0];"
                                  "return img && img.complete && img.naturalWidth ? img.src : null;")
SCREEN_POSITIONS = f"""
const view = Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name('map'));
const rect = view.canvas_view.el.getBoundingClientRect(), data = {POINTS}.data;
return Array.from(data.x, (x, i) => [rect.left + view.frame.x_scale.compute(x),
                                      rect.top + view.frame.y_scale.compute(data.y[i])]);
"""


def pointer(driver, x: float, y: float, click: bool = False) -> None:
    """Move the mouse to page coordinates (x, y), and click there if asked."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    if click:
        actions.pointer_action.click()
    actions.perform()


def isolated_point(driver, clearance: float = 8.0) -> tuple[int, list[float]]:
    """The point farthest on screen from its nearest other (at least ``clearance`` px away), so the mouse on it
    hovers it alone; a k-d tree keeps this fast on 100,000 points."""
    from scipy.spatial import cKDTree

    positions = np.array(driver.execute_script(SCREEN_POSITIONS))
    distances, _ = cKDTree(positions).query(positions, k=2)
    row = int(np.argmax(distances[:, 1]))
    assert distances[row, 1] >= clearance, f"no point is {clearance} px from every other"
    return row, positions[row].tolist()
