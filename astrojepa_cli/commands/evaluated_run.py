"""What the commands that evaluate a run share: the run with its data, the frozen features of its
encoder, and recording the result in its manifest. Library modules are imported inside the functions,
so ``--help`` never loads torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from astrojepa_cli.console import stderr

if TYPE_CHECKING:
    import torch

    from astrojepa_cli.evaluate.features import Features
    from astrojepa_cli.runs import Run


def warn_if_unfinished(run: Run) -> None:
    """One warning line when a command uses the encoder of a run that did not complete."""
    from astrojepa_cli import runs

    if note := runs.unfinished_note(run):
        stderr.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)


def open_with_data(run_ref: str, data: str | None, root: Path | None) -> tuple[Run, str, Path]:
    """The run, the name of the store to evaluate on (default: its training data) and that store's path."""
    from astrojepa_cli import paths, runs

    run = runs.open_run(run_ref, root)
    warn_if_unfinished(run)
    data_name = data or run.manifest["dataset"]["name"]
    return run, data_name, paths.existing_store(data_name, root)


def frozen_features(run: Run, store_path: Path, device: str, tta: str,
                    pool: str | None = None) -> tuple[Features, torch.nn.Module]:
    """The run's encoder and its embeddings of every image in the store (all finite), pooled as ``pool``
    says or, when it is None, as the run's embedding is (``pretrain --embedding-pool``); read from the
    run's embedding cache when an earlier command computed them."""
    from astrojepa_cli import runs
    from astrojepa_cli.evaluate import features as feature_extraction
    from astrojepa_cli.evaluate.probes.linear import finite
    from astrojepa_cli.runs.embedding_cache import EmbeddingCache
    from astrojepa_cli.train.distributed import resolve_device

    cache = EmbeddingCache.of_run(run)  # before the encoder is loaded (see EmbeddingCache.of_run)
    encoder = runs.load_encoder(run)
    pool = pool or runs.run_pool(run.manifest)
    feature_extraction.check_pool(encoder, pool)
    features = feature_extraction.extract(encoder, store_path, resolve_device(device), pool=pool,
                                          stretch=runs.run_stretch(run.manifest), tta=tta, cache=cache)
    return finite(features), encoder


def record_evaluation(run: Run, key: str, result: dict, encoder_step: int | None) -> None:
    """Record an evaluation of the encoder saved at ``encoder_step`` in the run's manifest; warn when it is
    not of the run's final encoder."""
    recorded = run.add_evaluation(key, result, encoder_step)
    if recorded["run_status"] == "running":
        stderr.print(f"[yellow]warning:[/] run {run.id} is still training; this evaluated its encoder at step "
                     f"{encoder_step} and is recorded as such", highlight=False)
