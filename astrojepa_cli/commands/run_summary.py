"""A run's manifest in brief for people: the ``runs show`` summary and each evaluation's headline score
(``--json`` prints the whole manifest instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table

from astrojepa_cli.console import images_per_second, significant

if TYPE_CHECKING:
    from astrojepa_cli.runs import Run

# The score shown for an evaluation: the first of these its record has.
SCORES = {"balanced_accuracy": "balanced accuracy", "accuracy": "accuracy", "roc_auc": "ROC-AUC", "r2": "R²",
          "rmse": "RMSE"}
MONITORS = {"effective_rank": "effective rank", "online_probe_accuracy": "online-probe accuracy",
            "std_min": "smallest per-dimension std"}


def _score(values: dict) -> str | None:
    key = next((k for k in SCORES if isinstance(values.get(k), (int, float))), None)
    if key is None:
        return None
    spread = values.get(f"{key}_std")
    return f"{SCORES[key]} {values[key]:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")


def evaluation_score(record: dict) -> str:
    """One evaluation record in a few words: its headline score, or what it holds."""
    if record.get("curve"):
        point = record["curve"][-1]
        axis = "shots" if "shots" in point else "fraction"
        return f"{_score(point)} at {axis} {point[axis]}"
    if "pretrained" in record:
        return f"{_score(record['pretrained'])} fine-tuned; {_score(record['scratch'])} from scratch"
    if "spearman" in record:
        rho = record["spearman"].get("rho")
        return f"Spearman rho {rho:.3f} over {record['spearman']['n']} checkpoints" if rho is not None else "rho undefined"
    if "evaluation" in record:
        return _score(record["evaluation"]) or "recorded"
    if "top" in record:
        return f"top {record['top']} listed ({record.get('scorer', '')} score)"
    return _score(record) or "recorded"


def epochs_trained(manifest: dict) -> float | None:
    """Passes over the training images the run's steps made (0.06 for 2 steps of 33 per epoch), or None
    before it has recorded its steps."""
    config, dataset = manifest.get("config") or {}, manifest.get("dataset") or {}
    steps, batch, images = manifest.get("steps"), config.get("batch_size"), dataset.get("n_train_images")
    if steps is None or not batch or not images or images < batch:
        return None
    return steps / (images // batch)


def epochs_text(epochs: float) -> str:
    """``0.06 epoch``, ``1 epoch``, ``2.5 epochs``; below one, a note that no pass over the data finished."""
    shown = f"{epochs:.2g}" if epochs < 1 else f"{epochs:.3g}"
    text = f"{shown} epoch{'' if shown == '1' or epochs < 1 else 's'}"
    return text + ": less than one pass over the training images" if epochs < 1 else text


def test_split_seen(manifest: dict, data_name: str) -> str | None:
    """A warning when probes on ``data_name`` score images the run pretrained on: its test split was one of
    the run's training splits (``pretrain --train-splits all``, or runs made before the test split was left out)."""
    splits = (manifest.get("config") or {}).get("train_splits") or ()
    if (manifest.get("dataset") or {}).get("name") != data_name or "test" not in splits:
        return None
    return (f"the encoder pretrained on {data_name}'s test split ({', '.join(splits)}), so the probe scores images "
            "it saw without labels; pretrain without --train-splits to leave the test split out")


def latest_evaluation(manifest: dict) -> tuple[str, str] | tuple[None, None]:
    """The key and headline score of the most recent evaluation of the run's own encoder (the
    random-weights baselines that ``probe`` records beside its results are passed over)."""
    evaluations = {key: record for key, record in (manifest.get("evaluations") or {}).items()
                   if "-random-init" not in key and isinstance(record, dict)}
    if not evaluations:
        return None, None
    key = list(evaluations)[-1]  # evaluations are kept in the order they were recorded
    return key, evaluation_score(evaluations[key])


def run_summary(run: Run) -> Group:
    """Identity, status, method, embedding, data, result, the last epoch's monitors and every evaluation's score."""
    from astrojepa_cli.runs import run_pool

    manifest = run.manifest
    config, dataset, result = manifest.get("config", {}), manifest.get("dataset", {}), manifest.get("result", {})
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    steps = f", step {manifest['steps']} of {manifest['total_steps']}" if "total_steps" in manifest else ""
    named = f" (named {manifest['name']})" if manifest.get("name") else ""
    facts.add_row("run", f"{run.id}{named}")
    facts.add_row("status", f"{run.status or 'unknown'}{steps}")
    facts.add_row("time", f"{manifest.get('started', '?')} to {manifest.get('finished', 'now')}")
    method = [config.get("loss"), config.get("arch"), config.get("img_size") and f"{config['img_size']} px",
              config.get("batch_size") and f"batch {config['batch_size']}"]
    facts.add_row("method", ", ".join(str(part) for part in method if part))
    epochs = epochs_trained(manifest)
    if epochs is not None:
        facts.add_row("trained", f"{manifest['steps']:,} steps, {epochs_text(epochs)}")
    facts.add_row("embedding", f"{run_pool(manifest)} pooling (what probe, embed, anomalies and similar use "
                               "unless given --pool)")
    if dataset:
        shape = "×".join(str(s) for s in dataset.get("image_shape", []))
        splits = config.get("train_splits")
        facts.add_row("data", f"{dataset.get('name')}: {dataset.get('n_images', 0):,} images of {shape}, "
                              f"{dataset.get('n_train_images', 0):,} used for training"
                              + (f" (splits {', '.join(splits)})" if splits else ""))
    if result:
        facts.add_row("result", f"final loss {significant(result.get('final_loss'))}, "
                                f"{images_per_second(result.get('images_per_second') or 0)}")
    summaries = manifest.get("epochs") or []
    if summaries:
        last = summaries[-1]
        monitors = [f"{label} {last[key]:.3g}" for key, label in MONITORS.items() if key in last]
        facts.add_row(f"epoch {last.get('epoch', len(summaries) - 1)}", ", ".join(monitors) or "no monitors")
    facts.add_row("folder", str(run.dir))
    parts = [facts]
    evaluations = manifest.get("evaluations") or {}
    if evaluations:
        table = Table("evaluation", "score", title="evaluations", title_justify="left")
        for key, record in evaluations.items():
            table.add_row(key, evaluation_score(record))
        parts.append(table)
    return Group(*parts)
