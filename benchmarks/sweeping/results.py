"""A sweep's results folder: ``rows.jsonl`` (one finished result per line), the in-flight runs, and
each dataset's test labels (``test-labels.json``), which turn the rows' test predictions into
paired-bootstrap intervals of differences without the stores."""

from __future__ import annotations

import json
import os
from pathlib import Path

from astrojepa_cli.atomic import write_json

ROWS_FILE = "rows.jsonl"
STATE_FILE = "in-flight.json"
TEST_LABELS_FILE = "test-labels.json"


class Results:
    """``rows.jsonl`` (one finished result per line) and the in-flight pretraining runs, in ``out``."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.rows_path, self.state_path = out / ROWS_FILE, out / STATE_FILE
        self.test_labels_path = out / TEST_LABELS_FILE

    def rows(self) -> list[dict]:
        if not self.rows_path.exists():
            return []
        rows = []
        for line in self.rows_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write; its job runs again
        return rows

    def find(self, key: str) -> dict | None:
        return next((row for row in self.rows() if row["key"] == key), None)

    def append(self, row: dict) -> None:
        with open(self.rows_path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def in_flight(self) -> dict:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def set_in_flight(self, key: str, run_id: str | None) -> None:
        state = self.in_flight()
        if run_id is None:
            state.pop(key, None)
        else:
            state[key] = run_id
        write_json(self.state_path, state)

    def test_labels(self) -> dict[str, list[int]]:
        """Per dataset, the labels of the labelled test images in store order: the order of every row's
        ``test_predictions``."""
        return json.loads(self.test_labels_path.read_text()) if self.test_labels_path.exists() else {}

    def record_test_labels(self, dataset: str, labels: list[int]) -> None:
        write_json(self.test_labels_path, {**self.test_labels(), dataset: labels})
