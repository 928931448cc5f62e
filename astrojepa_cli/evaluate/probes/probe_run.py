"""Probe one run on one labelled store: its encoder's features scored by the requested protocol,
under the name the result is recorded as, beside the same network with random weights.

The command (``astrojepa probe``) parses the options, calls :func:`probe_run`, records what it
returns in the run's manifest and prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from astrojepa_cli import runs
from astrojepa_cli.data import store
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate import features as feature_extraction
from astrojepa_cli.evaluate.probes import context
from astrojepa_cli.evaluate.probes.bootstrap import paired_difference_interval, with_interval
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, finite
from astrojepa_cli.evaluate.probes.protocols import ProbeRequest, run_protocol
from astrojepa_cli.evaluate.probes.random_baseline import random_weights_result
from astrojepa_cli.evaluate.probes.snapshots import probe_snapshots
from astrojepa_cli.runs.embedding_cache import EmbeddingCache


@dataclass
class FeatureChoice:
    """Which frozen features are probed: the pooling (None: the run's embedding, ``pretrain
    --embedding-pool``), the per-image normalisation and the test-time views."""

    pool: str | None = None
    norm: str = "standard"
    tta: str = "none"

    def check(self) -> None:
        if self.pool is not None:
            feature_extraction.check_pool_name(self.pool)
        feature_extraction.check_tta(self.tta)
        feature_extraction.check_feature_norm(self.norm)

    def suffix(self) -> str:
        """What the choice adds to the protocol's recorded name (nothing for the defaults)."""
        return (context.pool_suffix(self.pool) + ("" if self.norm == "standard" else f"-{self.norm}")
                + feature_extraction.tta_suffix(self.tta))


@dataclass
class ProbeOutcome:
    """A probe's result, its recorded name, the evaluations to record, and what the score means."""

    protocol: str
    result: dict
    encoder_step: int | None
    records: list[tuple[str, dict]] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    verdict: str | None = None


def check_options(request: ProbeRequest, features: FeatureChoice, snapshots: bool) -> None:
    """Refuse options that contradict each other, before any run or store is opened."""
    request.validate()
    features.check()
    if snapshots and request.protocol not in ("linear", f"knn-{request.knn}"):
        raise UserError("--snapshots works with the linear or --knn probe only")


def test_labels(store_path: Path, test_split: str = TEST_SPLIT) -> np.ndarray:
    """The labels of the labelled ``test_split`` images, in store order (the order of ``test_predictions``)."""
    meta = store.load(store_path, with_images=False)
    return meta.labels[(meta.split == test_split) & (meta.labels >= 0)]


def probe_run(run: runs.Run, data_name: str, store_path: Path, request: ProbeRequest, features: FeatureChoice,
              device: torch.device, snapshots: bool = False, max_snapshots: int | None = None) -> ProbeOutcome:
    """Score ``run``'s encoder (or, with ``request.random_init``, the random-weights baseline of
    :mod:`.random_baseline`) on ``store_path``; a balanced-accuracy result gets its bootstrap interval
    and is put beside the random-weights score (computed once, then cached in the manifest), the paired
    interval of the difference, and chance. The options were checked by :func:`check_options`."""
    run_cache = EmbeddingCache.of_run(run)  # before the encoder is loaded (see EmbeddingCache.of_run)
    encoder = runs.load_encoder(run)
    stretch = runs.run_stretch(run.manifest)
    features = replace(features, pool=features.pool or runs.run_pool(run.manifest))
    classes = store.read_info(store_path).classes
    y_test = test_labels(store_path)

    def fresh_encoder(init_seed: int | None = None) -> torch.nn.Module:
        if init_seed is not None:
            torch.manual_seed(init_seed)
        fresh = runs.rebuild_encoder(encoder.timm_spec)
        fresh.input_size = encoder.input_size  # evaluated at the size the run trained at
        return fresh

    def features_of(probed: torch.nn.Module) -> feature_extraction.Features:
        feature_extraction.check_pool(probed, features.pool)
        cache = run_cache if probed is encoder else None  # random weights are never cached
        extracted = finite(feature_extraction.extract(probed, store_path, device, pool=features.pool,
                                                      stretch=stretch, tta=features.tta, cache=cache))
        return feature_extraction.layer_normed(extracted) if features.norm == "layernorm" else extracted

    def score(probed: torch.nn.Module) -> dict:
        return with_interval(run_protocol(request, lambda: features_of(probed), classes, probed, fresh_encoder,
                                          store_path, device, stretch, features.tta), y_test)

    def random_weights() -> dict:
        return random_weights_result(fresh_encoder, request.first_seed, store_path, device, stretch, score)

    protocol = request.protocol + features.suffix()
    if snapshots:
        protocol += "-snapshots"
        result = probe_snapshots(run, score, "balanced_accuracy", max_snapshots)
    else:
        result = random_weights() if request.random_init else score(encoder)
    key = f"{data_name}/{protocol}"
    outcome = ProbeOutcome(protocol, result, encoder.saved_step, records=[(key, result)])
    if not (snapshots or request.random_init) and "test_predictions" in result:
        twin = context.random_init_key(key, request.protocol)
        baseline, computed = context.random_weights_score(run.manifest.get("evaluations", {}), twin,
                                                          random_weights, len(y_test))
        if computed:
            outcome.records.append((twin, baseline))
        chance = 1.0 / len(result.get("per_class_recall") or classes)
        difference_ci = paired_difference_interval(y_test, np.asarray(result["test_predictions"]),
                                                   np.asarray(baseline["test_predictions"]))
        outcome.context = {"random_weights_balanced_accuracy": baseline["balanced_accuracy"],
                           "random_weights_balanced_accuracy_ci": baseline["balanced_accuracy_ci"],
                           "random_inits": baseline["random_inits"],
                           "chance_balanced_accuracy": chance,
                           "difference": result["balanced_accuracy"] - baseline["balanced_accuracy"],
                           "difference_ci": difference_ci, "n_test": len(y_test)}
        outcome.verdict = context.verdict(result["balanced_accuracy"], result["balanced_accuracy_ci"],
                                          baseline["balanced_accuracy"], chance, difference_ci, len(y_test))
    elif "balanced_accuracy_ci" in result:
        outcome.verdict = context.score_sentence(result["balanced_accuracy"], result["balanced_accuracy_ci"],
                                                 len(y_test)) + "."
    return outcome
