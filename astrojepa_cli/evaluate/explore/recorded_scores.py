"""Anomaly scores for the explorer: the run's latest ``anomalies`` record of the same embedding, when it
still matches the store and the encoder, else the default score computed on the spot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from astrojepa_cli.evaluate.explore.anomalies import SCORERS, score, score_meaning
from astrojepa_cli.evaluate.features import tta_suffix
from astrojepa_cli.evaluate.probes.context import pool_suffix

DEFAULT_SCORER, DEFAULT_K = "knn", 10


def latest_record(evaluations: dict, data_name: str, pool: str, tta: str) -> dict | None:
    """The newest ``anomalies`` evaluation of ``data_name`` with this pooling and test-time averaging
    (recorded as ``DATA/anomalies-SCORER[-POOL][-TTA]``; the manifest keeps the newest last)."""
    wanted = {f"{data_name}/anomalies-{scorer}{pool_suffix(pool)}{tta_suffix(tta)}" for scorer in SCORERS}
    keys = [key for key in evaluations if key in wanted]
    return evaluations[keys[-1]] if keys else None


def recorded_scores(record: dict, ids: np.ndarray, encoder_step: int | None) -> np.ndarray | None:
    """The record's score of every object of ``ids``, in that order; None when the record is of another
    encoder step, its CSV is gone or unreadable, or it does not score exactly these objects."""
    if record.get("encoder_step") != encoder_step or not Path(record.get("csv", "")).is_file():
        return None
    try:
        with open(record["csv"], newline="") as handle:
            by_id = {row["id"]: float(row["score"]) for row in csv.DictReader(handle)}
    except (OSError, KeyError, ValueError):
        return None
    if len(by_id) != len(ids) or not all(object_id in by_id for object_id in ids):
        return None
    return np.array([by_id[object_id] for object_id in ids], dtype=np.float64)


def anomaly_scores(evaluations: dict, data_name: str, pool: str, tta: str, ids: np.ndarray,
                   embeddings: np.ndarray, encoder_step: int | None) -> tuple[np.ndarray, str]:
    """Every object's anomaly score (higher = more unusual) and a line saying where it comes from."""
    record = latest_record(evaluations, data_name, pool, tta)
    if record is not None:
        scores = recorded_scores(record, ids, encoder_step)
        if scores is not None:
            scorer, k = record.get("scorer", DEFAULT_SCORER), int(record.get("k", DEFAULT_K))
            meaning = score_meaning(scorer, k) if scorer in SCORERS else "higher = more unusual"
            return scores, f"{scorer} {meaning}, as recorded by 'astrojepa anomalies' at {record.get('time', '?')}"
    scores = score(embeddings, DEFAULT_SCORER, DEFAULT_K)
    return scores, f"{DEFAULT_SCORER} {score_meaning(DEFAULT_SCORER, DEFAULT_K)} (computed now; no matching anomalies record)"
