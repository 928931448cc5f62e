"""Seeded stratified hold-outs: the train/valid/test split a store gets when its source brings none."""

from __future__ import annotations

import numpy as np


def hold_out(rows: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held_out)``: ``count`` of ``rows`` held out at random, seeded, in class proportion.

    ``labels`` holds one stratum per row (-1, unlabelled, is a stratum too). Stratification needs
    every stratum on both sides (at least two rows each, and at least as many rows per side as
    strata); where that is impossible, as in a handful of images, the rows are drawn without it.
    """
    from sklearn.model_selection import train_test_split  # here, not at the top: importing sklearn is slow

    if count <= 0:
        return rows, rows[:0]
    if count >= len(rows):
        return rows[:0], rows
    strata, sizes = np.unique(labels, return_counts=True)
    stratify = labels if sizes.min() >= 2 and min(count, len(rows) - count) >= len(strata) else None
    kept, held_out = train_test_split(rows, test_size=count, stratify=stratify, random_state=seed)
    return np.sort(kept), np.sort(held_out)


def stratified_split(labels: np.ndarray, seed: int, valid: float = 0.1, test: float = 0.1) -> np.ndarray:
    """``"train"``, ``"valid"`` or ``"test"`` per row: seeded fractions of all rows, in class proportion.

    The valid and test parts hold ``round(fraction * N)`` rows each, drawn by :func:`hold_out`.
    """
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    rest, test_rows = hold_out(rows, labels, int(round(test * len(rows))), seed)
    _, valid_rows = hold_out(rest, labels[rest], int(round(valid * len(rows))), seed)
    split = np.full(len(labels), "train", dtype=object)
    split[test_rows] = "test"
    split[valid_rows] = "valid"
    return split
