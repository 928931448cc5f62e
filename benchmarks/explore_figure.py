"""docs/figures/explore.png: a screenshot of an explorer page in headless Chromium, with one object clicked.

Usage::

    astrojepa fetch-data first-radio
    astrojepa pretrain --data first-radio --budget 60s
    astrojepa anomalies latest
    astrojepa explore latest --method tsne --json | python benchmarks/explore_figure.py --page -

``--page`` is the page (or ``-``: read ``explore --json`` from stdin for its path); ``--select`` is the id
of the object to click (default: the most unusual one).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import chromium, errors, wait_for, wait_for_bokeh  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", required=True, help="the explorer page, or - for explore --json on stdin")
    parser.add_argument("--select", help="id of the object to click (default: the most unusual)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "explore.png")
    args = parser.parse_args()
    page = Path(json.loads(sys.stdin.read())["path"] if args.page == "-" else args.page)
    with tempfile.TemporaryDirectory() as downloads:
        driver = chromium(Path(downloads), width=1400, height=1000)
        try:
            driver.get(page.resolve().as_uri())
            wait_for_bokeh(driver)
            points = "Bokeh.documents[0].get_model_by_name('points')"
            row = driver.execute_script(
                f"const ids = {points}.data.id; return arguments[0] ? ids.indexOf(arguments[0]) : "
                "Bokeh.documents[0].get_model_by_name('top-anomalies').data.row[0];", args.select)
            driver.execute_script(f"{points}.selected.indices = [arguments[0]];", row)
            wait_for(driver, "return Bokeh.documents[0].get_model_by_name('neighbours').text.includes('aj-item')")
            wait_for(driver, "return Bokeh.documents[0].is_idle")
            assert not errors(driver), errors(driver)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(args.out)


if __name__ == "__main__":
    main()
