"""Probe every encoder a run kept (``pretrain --keep-encoders``) and rank-correlate loss with the score.

LeJEPA (Balestriero & LeCun 2025) argues that its training loss tracks downstream
accuracy, which would allow choosing a checkpoint without labels. This measures
that within one run: the training loss logged at each checkpoint against a probe
metric of the encoder saved at that checkpoint.
"""

from __future__ import annotations

from typing import Callable

import torch

from astrojepa_cli import runs
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.run_compare import MIN_RUNS_FOR_SPEARMAN, rank_correlation


def evenly_spaced(items: list, most: int | None) -> list:
    """At most ``most`` of ``items``, evenly spaced from the first to the last (all of them if ``most`` is None)."""
    if most is None or len(items) <= most:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (most - 1)) for i in range(most)})
    return [items[i] for i in picks]


def probe_snapshots(run: runs.Run, score: Callable[[torch.nn.Module], dict], metric: str,
                    most: int | None = None) -> dict:
    """``score`` applied to each kept encoder (at most ``most``, evenly spaced), one row per checkpoint,
    and Spearman's ρ(loss, ``metric``)."""
    if most is not None and most < MIN_RUNS_FOR_SPEARMAN:
        raise UserError(f"--max-snapshots must be at least {MIN_RUNS_FOR_SPEARMAN}")
    snapshots = [s for s in run.manifest.get("snapshots", []) if s.get("loss") is not None]
    if len(snapshots) < MIN_RUNS_FOR_SPEARMAN:
        raise UserError(f"run {run.id} kept {len(snapshots)} encoder(s) with a logged loss; --snapshots needs at least "
                        f"{MIN_RUNS_FOR_SPEARMAN} (pretrain with --keep-encoders and --save-every)")
    snapshots = evenly_spaced(snapshots, most)
    rows = []
    for snapshot in snapshots:
        result = score(runs.load_encoder_file(run.dir / snapshot["file"]))
        rows.append({"step": snapshot["step"], "loss": snapshot["loss"], metric: result[metric]})
    losses, values = [r["loss"] for r in rows], [r[metric] for r in rows]
    if len(set(losses)) < 2 or len(set(values)) < 2:
        correlation = {"rho": None, "p_value": None, "n": len(rows),
                       "reason": f"every checkpoint has the same {'loss' if len(set(losses)) < 2 else metric}"}
    else:
        correlation = rank_correlation(losses, values)
    return {"snapshots": rows, "metric": metric, "spearman": correlation}
