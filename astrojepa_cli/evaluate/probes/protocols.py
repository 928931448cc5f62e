"""Which probe protocol a request asks for, run over seeds, and the name it is recorded under.

Protocols: ``linear`` (default), ``knn-K``, ``few-shot``, ``label-fraction``,
``finetune`` (classification) and, with a target, ``regression-T`` or
``finetune-T``. ``--random-init`` appends ``-random-init``; ``few-shot`` with
``--scratch`` is recorded as ``few-shot-vs-scratch``. Results go into the
run manifest under ``evaluations["<dataset>/<protocol>"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import Features
from astrojepa_cli.evaluate.probes import finetune as finetuning
from astrojepa_cli.evaluate.probes.finetune_config import FinetuneConfig
from astrojepa_cli.evaluate.probes.knn import knn_probe
from astrojepa_cli.evaluate.probes.label_efficiency import fractions_curve, shots_curve
from astrojepa_cli.evaluate.probes.linear import linear_probe
from astrojepa_cli.evaluate.probes.regression import ridge_probe
from astrojepa_cli.evaluate.probes.scratch_shots import scratch_shots
from astrojepa_cli.evaluate.probes.scratch_training import ScratchTraining
from astrojepa_cli.evaluate.probes.seeds import over_seeds


@dataclass
class ProbeRequest:
    seeds: int = 1
    first_seed: int = 0
    knn: int | None = None
    shots: list[int] | None = None
    fractions: list[float] | None = None
    finetune: bool = False
    finetune_config: FinetuneConfig = field(default_factory=FinetuneConfig)
    target: str | None = None
    random_init: bool = False
    scratch: bool = False
    scratch_training: ScratchTraining = field(default_factory=ScratchTraining)

    def validate(self) -> None:
        chosen = [name for name, given in (("--knn", self.knn is not None), ("--shots", self.shots is not None),
                                           ("--fractions", self.fractions is not None),
                                           ("--finetune", self.finetune)) if given]
        if len(chosen) > 1:
            raise UserError(f"choose one protocol at a time, not {' and '.join(chosen)}")
        if self.target and chosen and chosen != ["--finetune"]:
            raise UserError(f"--target works with the linear probe or --finetune, not {chosen[0]}")
        if not self.finetune and self.finetune_config != FinetuneConfig():
            raise UserError("--finetune-epochs, --finetune-lr and --finetune-labels set the training of --finetune; "
                            "add --finetune or drop them")
        if self.finetune:
            self.finetune_config.validate()
        if self.finetune and self.random_init:
            raise UserError("--finetune already trains the same architecture from scratch; drop --random-init")
        if self.scratch and (self.shots is None or self.random_init):
            raise UserError("--scratch compares the few-shot probe with training from scratch: it needs --shots "
                            "and no --random-init")
        if not self.scratch and self.scratch_training != ScratchTraining():
            raise UserError("--scratch-steps sets the training of --scratch; add --scratch or drop it")
        self.scratch_training.validate()
        if self.seeds < 1:
            raise UserError("--seeds must be at least 1")

    @property
    def protocol(self) -> str:
        if self.finetune:
            name = f"finetune-{self.target}" if self.target else "finetune"
            if self.finetune_config.label_fraction < 1:
                name += f"-labels{self.finetune_config.label_fraction:g}"
        elif self.target:
            name = f"regression-{self.target}"
        elif self.knn is not None:
            name = f"knn-{self.knn}"
        elif self.shots is not None:
            name = "few-shot-vs-scratch" if self.scratch else "few-shot"
        elif self.fractions is not None:
            name = "label-fraction"
        else:
            name = "linear"
        return f"{name}-random-init" if self.random_init else name

    @property
    def needs_features(self) -> bool:
        return not self.finetune


def run_protocol(request: ProbeRequest, features: Callable[[], Features], class_names: list[str],
                 encoder: torch.nn.Module, scratch: Callable[[int], torch.nn.Module], store_path: Path,
                 device: torch.device, stretch: str = "none", tta: str = "none") -> dict:
    """The result of ``request``: ``features()`` embeds the store (frozen protocols), ``scratch(seed)``
    builds a freshly initialised encoder of the same architecture (fine-tuning, and the from-scratch
    baseline of ``--shots --scratch``, whose test predictions get the probe's ``tta``)."""
    request.validate()
    if request.finetune:
        task = finetuning.task_for(store_path, request.target)
        return over_seeds(lambda seed: finetuning.compare_with_scratch(
            encoder, scratch(seed), store_path, task, request.finetune_config, device, seed, stretch), request.seeds,
            request.first_seed)
    embedded = features()
    if request.shots is not None:
        curve = shots_curve(embedded, class_names, request.shots, request.seeds)
        if request.scratch:
            curve["scratch_curve"] = [
                {"shots": shots, **scratch_shots(scratch, store_path, class_names, shots, request.seeds, device,
                                                 stretch, tta, request.scratch_training)} for shots in sorted(request.shots)]
        return curve
    if request.fractions is not None:
        return fractions_curve(embedded, class_names, request.fractions, request.seeds)
    if request.knn is not None:
        return knn_probe(embedded, class_names, request.knn)
    if request.target:
        return ridge_probe(embedded, request.target)
    return over_seeds(lambda seed: linear_probe(embedded, class_names, seed), request.seeds, request.first_seed)
