"""What a probe score means: beside the same network with random weights, and chance.

A user pretrains to get better features than a network nobody trained; the
random-weights score of the same probe is the baseline that says whether the
pretraining paid. It is computed once per run, protocol and dataset, and cached
in the manifest under the key ``--random-init`` records (``<data>/<protocol>-random-init…``).
"""

from __future__ import annotations

from typing import Callable

# Below this effective rank (RankMe) of the embeddings, a run has collapsed to a few directions.
COLLAPSED_RANK = 8.0


def pool_suffix(pool: str) -> str:
    """What a pooling adds to the protocol key an evaluation is recorded under (``linear-last2``; none for mean)."""
    return "" if pool == "mean" else f"-{pool}"


def plain_key(manifest: dict, data: str, protocol: str = "linear") -> str:
    """The key a plain command records on the run's own embedding: ``linear`` for ``astrojepa probe RUN
    --data DATA`` (``DATA/linear-last2`` for a ``last2`` run), ``anomalies-knn`` for ``astrojepa anomalies``."""
    from astrojepa_cli.runs import run_pool

    return f"{data}/{protocol}{pool_suffix(run_pool(manifest))}"


def random_init_key(key: str, protocol: str) -> str:
    """The manifest key of the random-weights twin of evaluation ``key`` whose base protocol is ``protocol``."""
    data, name = key.split("/", 1)
    return f"{data}/{protocol}-random-init{name[len(protocol):]}"


def random_weights_score(evaluations: dict, key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """The cached random-weights result under ``key``, else ``compute()``'s; and whether it was computed now."""
    if key in evaluations:
        return evaluations[key], False
    return compute(), True


def verdict(score: float, random_score: float, chance: float) -> str:
    """One plain sentence on a balanced accuracy beside random weights and chance."""
    gain = score - random_score
    if gain >= 0.05:
        meaning = "the pretraining clearly paid"
    elif gain > 0.01:
        meaning = "the pretraining helped a little"
    elif gain >= -0.01:
        meaning = "the pretraining added nothing over random weights"
    else:
        meaning = "random weights do better: the pretraining hurt these features"
    return (f"balanced accuracy {score:.3f}; the same network with random weights scores {random_score:.3f} "
            f"and chance is {chance:.3f}: {meaning} ({gain:+.3f}).")


def collapse_warning(manifest: dict) -> str | None:
    """A warning when the run's last recorded effective rank says its embeddings collapsed."""
    epochs = manifest.get("epochs") or []
    rank = epochs[-1].get("effective_rank") if epochs else None
    if rank is None or rank >= COLLAPSED_RANK:
        return None
    return (f"the embeddings' effective rank was {rank:.1f} at the last epoch (below {COLLAPSED_RANK:.0f}): "
            "they span few directions, so probes have little to work with")
