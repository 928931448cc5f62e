"""Fine-tuning: the whole encoder plus a linear head, next to the same architecture trained from scratch.

Both models see identical data, hyper-parameters and seeds; only the encoder's
starting weights differ. Training stops early when the validation loss has not
improved for ``patience`` epochs, and the weights of the best validation epoch
are the ones scored on the test split.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from astrojepa_cli.data import loader, store
from astrojepa_cli.data.splits import hold_out
from astrojepa_cli.errors import UserError
from astrojepa_cli.evaluate.features import encoder_img_size
from astrojepa_cli.evaluate.probes.finetune_config import FinetuneConfig
from astrojepa_cli.evaluate.probes.linear import TEST_SPLIT, classification_metrics
from astrojepa_cli.evaluate.probes.regression import regression_metrics
from registry.views import centre_view


@dataclass
class Task:
    """What the head predicts: class labels, or the store target ``target`` (then ``class_names`` is empty)."""

    values: np.ndarray
    class_names: list[str]
    target: str | None = None

    @property
    def is_regression(self) -> bool:
        return self.target is not None

    @property
    def outputs(self) -> int:
        return 1 if self.is_regression else len(self.class_names)

    def usable(self) -> np.ndarray:
        return np.isfinite(self.values) if self.is_regression else self.values >= 0


def task_for(store_path: Path, target: str | None) -> Task:
    arrays = store.load(store_path, with_images=False)
    if target is None:
        return Task(arrays.labels, store.read_info(store_path).classes)
    if target not in arrays.targets:
        raise UserError(f"the dataset has no target '{target}' (targets: {', '.join(sorted(arrays.targets)) or 'none'})")
    return Task(arrays.targets[target].astype(np.float64), [], target)


def split_rows(split: np.ndarray, task: Task, valid_fraction: float, seed: int,
               label_fraction: float = 1.0) -> dict[str, np.ndarray]:
    """Usable train, validation and test rows. With ``label_fraction`` < 1 a seeded, stratified share of
    the train and valid rows is kept (the test rows all are); then, without a usable ``valid`` split, a
    seeded stratified ``valid_fraction`` of train is held out for early stopping."""
    usable = task.usable()
    rows = {name: np.flatnonzero((split == name) & usable) for name in ("train", "valid", TEST_SPLIT)}
    if label_fraction < 1:
        for name in ("train", "valid"):
            strata = np.zeros(len(rows[name]), dtype=int) if task.is_regression else task.values[rows[name]]
            keep = max(2, int(round(label_fraction * len(rows[name])))) if len(rows[name]) >= 2 else len(rows[name])
            rows[name] = np.sort(hold_out(rows[name], strata, keep, seed)[1])
    if len(rows["valid"]) < 2:
        train = rows["train"]
        strata = np.zeros(len(train), dtype=int) if task.is_regression else task.values[train]
        rows["train"], rows["valid"] = hold_out(train, strata, int(round(valid_fraction * len(train))), seed)
    for name, found in rows.items():
        if len(found) < 2:
            raise UserError(f"fine-tuning needs at least two usable images in the {name} split, found {len(found)}")
    return rows


class EncoderWithHead(nn.Module):
    """An encoder and a linear head on its embedding: the model that fine-tuning and the from-scratch baselines train."""

    def __init__(self, encoder: nn.Module, outputs: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embed_dim, outputs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))


def _loss(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if task.is_regression:
        return F.mse_loss(outputs.squeeze(1), targets)
    return F.cross_entropy(outputs, targets)


@torch.no_grad()
def _predict(model: EncoderWithHead, data: loader.DeviceImages, positions: torch.Tensor, img_size: int,
             batch_size: int) -> torch.Tensor:
    model.eval()
    return torch.cat([model(centre_view(data.batch(chunk), img_size)) for chunk in positions.split(batch_size)])


def train_and_score(encoder: nn.Module, task: Task, data: loader.DeviceImages, positions: dict[str, torch.Tensor],
                    targets: torch.Tensor, config: FinetuneConfig, seed: int) -> dict:
    """Train ``encoder`` + a linear head with AdamW; early stopping on validation loss; test metrics."""
    device = data.device
    torch.manual_seed(seed)
    model = EncoderWithHead(encoder, task.outputs).to(device)
    img_size = encoder_img_size(encoder, data.pixels.shape[-1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_state, best_epoch, valid_losses = math.inf, None, 0, []
    for epoch in range(config.epochs):
        model.train()
        order = positions["train"][torch.randperm(len(positions["train"]), generator=generator).to(device)]
        for batch in order.split(config.batch_size):
            loss = _loss(task, model(centre_view(data.batch(batch), img_size)), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        valid = positions["valid"]
        valid_loss = float(_loss(task, _predict(model, data, valid, img_size, config.batch_size), targets[valid]))
        valid_losses.append(valid_loss)
        if valid_loss < best_loss:
            best_loss, best_state, best_epoch = valid_loss, copy.deepcopy(model.state_dict()), epoch + 1
        elif epoch + 1 - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    test = positions[TEST_SPLIT]
    outputs = _predict(model, data, test, img_size, config.batch_size).cpu()
    truth = targets[test].cpu().numpy()
    if task.is_regression:
        metrics = regression_metrics(truth, outputs.squeeze(1).numpy())
    else:
        metrics = classification_metrics(truth, outputs.argmax(1).numpy(), task.class_names)
    return {**metrics, "best_epoch": best_epoch, "epochs_run": len(valid_losses), "valid_loss": valid_losses}


def compare_with_scratch(encoder: nn.Module, scratch: nn.Module, store_path: Path, task: Task,
                         config: FinetuneConfig, device: torch.device, seed: int = 0, stretch: str = "none") -> dict:
    """Fine-tune ``encoder`` and train ``scratch`` (same architecture, fresh weights) identically."""
    config.validate()
    arrays = store.load(store_path, with_images=False)
    rows = split_rows(arrays.split, task, config.valid_fraction, seed, config.label_fraction)
    every = np.concatenate([rows["train"], rows["valid"], rows[TEST_SPLIT]])
    data = loader.DeviceImages(store_path, device, every, stretch)
    bounds = np.cumsum([0, len(rows["train"]), len(rows["valid"]), len(rows[TEST_SPLIT])])
    positions = {name: torch.arange(bounds[i], bounds[i + 1], device=device)
                 for i, name in enumerate(("train", "valid", TEST_SPLIT))}
    values = task.values[every]
    if task.is_regression:
        # The head learns a standardised target; metrics are reported in the target's own units.
        train_values = values[: bounds[1]]
        mean, std = float(train_values.mean()), float(train_values.std()) or 1.0
        targets = torch.as_tensor((values - mean) / std, dtype=torch.float32, device=device)
    else:
        targets = torch.as_tensor(values, dtype=torch.long, device=device)
    results = {}
    for name, model_encoder in (("pretrained", copy.deepcopy(encoder)), ("scratch", scratch)):
        scored = train_and_score(model_encoder, task, data, positions, targets, config, seed)
        if task.is_regression:
            scored = {**scored, **_rescaled(scored, std)}
        results[name] = scored
    return {**results, "config": asdict(config), "target": task.target,
            **{f"n_{name}": int(len(found)) for name, found in rows.items()}}


def _rescaled(metrics: dict, std: float) -> dict:
    """Regression metrics computed on the standardised target, back in the target's units."""
    return {"mse": metrics["mse"] * std**2, "rmse": metrics["rmse"] * std, "mae": metrics["mae"] * std}
