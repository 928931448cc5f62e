"""What a probe score means: beside the same network with random weights, and chance.

A user pretrains to get better features than a network nobody trained; the
random-weights score of the same probe (:mod:`.random_baseline`) is the baseline that
says whether the pretraining paid. It is computed once per run, protocol and dataset,
and cached in the manifest under the key ``--random-init`` records
(``<data>/<protocol>-random-init…``), with its prediction for every test image, so
that the difference of the two can be given a paired bootstrap interval (:mod:`.bootstrap`).
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


def usable_baseline(record: dict | None, n_test: int) -> bool:
    """Whether a recorded random-weights result can be compared with a probe on ``n_test`` test images:
    it was scored by the present protocol (every random initialisation's score and its test predictions kept)
    on as many."""
    return (isinstance(record, dict) and "random_inits" in record and "test_predictions" in record
            and record.get("n_test") == n_test)


def random_weights_score(evaluations: dict, key: str, compute: Callable[[], dict], n_test: int) -> tuple[dict, bool]:
    """The cached random-weights result under ``key`` if :func:`usable_baseline`, else ``compute()``'s;
    and whether it was computed now (a result of an older protocol is replaced)."""
    if usable_baseline(evaluations.get(key), n_test):
        return evaluations[key], False
    return compute(), True


def score_sentence(score: float, score_ci: list[float], n_test: int) -> str:
    """A balanced accuracy with its 95 % bootstrap interval over the test images."""
    return f"balanced accuracy {score:.3f} (95% interval {score_ci[0]:.3f} to {score_ci[1]:.3f} over {n_test} test images)"


def verdict(score: float, score_ci: list[float], random_score: float, chance: float, difference_ci: list[float],
            n_test: int) -> str:
    """One plain sentence on a balanced accuracy beside random weights and chance, judged by the 95 %
    paired bootstrap interval of the difference (:func:`.bootstrap.paired_difference_interval`):
    the pretraining paid when the whole interval is above 0, random weights do better when it is below."""
    gain = score - random_score
    low, high = difference_ci
    interval = f"95% interval {low:+.3f} to {high:+.3f} over {n_test} test images"
    if low > 0:
        meaning = f"the pretraining paid: {gain:+.3f} ({interval})"
    elif high < 0:
        meaning = f"random weights do better: {gain:+.3f} ({interval}); the pretraining hurt these features"
    else:
        meaning = f"no measurable difference from random weights: {gain:+.3f} ({interval}, which spans 0)"
    return (f"{score_sentence(score, score_ci, n_test)}; the same network with random weights scores "
            f"{random_score:.3f} and chance is {chance:.3f}: {meaning}.")


def convergence_warning(key: str, result: dict) -> str | None:
    """A warning when the logistic regression behind ``result`` stopped at its iteration limit."""
    if result.get("converged", True):
        return None
    return (f"the solver of {key} did not converge in {result.get('max_iter')} iterations (C = {result.get('C', 0):g}); "
            "its score may understate the features")


def collapse_warning(manifest: dict) -> str | None:
    """A warning when the run's last recorded effective rank says its embeddings collapsed."""
    epochs = manifest.get("epochs") or []
    rank = epochs[-1].get("effective_rank") if epochs else None
    if rank is None or rank >= COLLAPSED_RANK:
        return None
    return (f"the embeddings' effective rank was {rank:.1f} at the last epoch (below {COLLAPSED_RANK:.0f}): "
            "they span few directions, so probes have little to work with")
