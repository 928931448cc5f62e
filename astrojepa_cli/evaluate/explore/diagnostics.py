"""Diagnostics of frozen features: is the spectrum collapsed, what do the top components encode,
and does a training head (the projector) hold signal the encoder embedding lacks.

* the spectrum: RankMe and the share of variance in the top principal components;
* simple image properties measured on the pixels the encoder sees (flux above the sky,
  apparent size, background level, centring offset), and the Spearman correlation of
  each top principal-component score with each of them;
* the embedding with its top principal components projected out, to probe without them;
* the encoder embedding and a head's output side by side, from one pass over the store;
* the learnable temperature's trajectory from a run's ``metrics.jsonl``.

Nothing here trains or imports the training code: a head is passed in already built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from torch import nn

from astrojepa_cli.data import loader, store
from astrojepa_cli.evaluate.features import Features, extract
from registry.spectrum import effective_rank
from astrojepa_cli.runs import read_metrics
from registry.views import centre_view

PROPERTIES = ("flux", "size", "background", "centring")
TOP_COMPONENTS = (1, 5, 10)
# Width of the frame whose median is the background level, as a fraction of the image side.
BORDER_FRACTION = 0.125


def rankme(embeddings: np.ndarray) -> float:
    r"""RankMe (Garrido et al. 2023, arXiv 2210.02885): :math:`\exp(-\sum_k p_k \log p_k)`,
    :math:`p_k = \sigma_k / \sum_j \sigma_j`, over the singular values σ of the (N, D) embedding matrix.

    It lies in [1, min(N, D)]: 1 for embeddings on one line, min(N, D) for a flat spectrum.
    """
    return effective_rank(torch.as_tensor(np.asarray(embeddings, dtype=np.float64)))


def variance_shares(embeddings: np.ndarray, tops: tuple[int, ...] = TOP_COMPONENTS) -> dict[str, float]:
    r"""Share of the total variance in the top ``k`` principal components, for each ``k`` of ``tops``:
    :math:`\sum_{i \le k} \lambda_i / \sum_i \lambda_i`, with λ the eigenvalues of the covariance (descending)."""
    return _shares(explained_variance(embeddings), tops)


def _shares(ratios: np.ndarray, tops: tuple[int, ...]) -> dict[str, float]:
    return {f"top{k}": float(ratios[:k].sum()) for k in tops}


def explained_variance(embeddings: np.ndarray) -> np.ndarray:
    r"""The normalised covariance spectrum :math:`\lambda_i / \sum_j \lambda_j`, descending (from the centred SVD)."""
    centred = np.asarray(embeddings, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    variance = singular**2
    return variance / max(variance.sum(), 1e-300)


def spectrum(embeddings: np.ndarray, tops: tuple[int, ...] = TOP_COMPONENTS, keep: int = 64) -> dict:
    """RankMe, RankMe of the centred embeddings, the top-``k`` variance shares, and the first ``keep``
    normalised eigenvalues (for plots).

    RankMe as published uses the raw embeddings, whose mean direction can dominate the first singular
    value (pooled ReLU features are all positive); the centred value measures the spread around the mean.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    ratios = explained_variance(embeddings)
    return {"rankme": rankme(embeddings), "rankme_centred": rankme(embeddings - embeddings.mean(axis=0)),
            "dim": int(embeddings.shape[1]),
            "variance_share": _shares(ratios, tops),
            "explained_variance_ratio": [float(r) for r in ratios[:keep]]}


def pixel_properties(pixels: torch.Tensor, border_fraction: float = BORDER_FRACTION) -> dict[str, np.ndarray]:
    r"""Per image of a (N, C, H, W) batch, measured on the mean over channels ``I``:

    * ``flux``: :math:`F = \sum_p w_p`, :math:`w_p = \max(I_p - s, 0)`, with the sky :math:`s` the image's median;
    * ``size``: the flux-weighted second-moment radius :math:`\sqrt{\sum_p w_p |x_p - \bar x|^2 / F}`, in pixels;
    * ``background``: the median of the border pixels (a frame ``border_fraction`` of the side wide);
    * ``centring``: :math:`|\bar x - c|`, the distance in pixels of the flux centroid
      :math:`\bar x = \sum_p w_p x_p / F` from the image centre :math:`c = ((W-1)/2, (H-1)/2)`.
    """
    image = pixels.float().mean(dim=1)
    n, height, width = image.shape
    flat = image.reshape(n, -1)
    sky = flat.median(dim=1).values
    weight = (image - sky.view(n, 1, 1)).clamp_min(0)
    flux = weight.sum(dim=(1, 2))
    safe_flux = flux.clamp_min(1e-12)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    centre_x = (weight * xs).sum(dim=(1, 2)) / safe_flux
    centre_y = (weight * ys).sum(dim=(1, 2)) / safe_flux
    radius2 = (xs - centre_x.view(n, 1, 1)) ** 2 + (ys - centre_y.view(n, 1, 1)) ** 2
    size = ((weight * radius2).sum(dim=(1, 2)) / safe_flux).sqrt()
    band = max(1, int(round(border_fraction * min(height, width))))
    frame = torch.ones(height, width, dtype=torch.bool)
    frame[band:-band, band:-band] = False
    background = image[:, frame].median(dim=1).values
    centring = torch.hypot(centre_x - (width - 1) / 2, centre_y - (height - 1) / 2)
    return {name: value.numpy().astype(np.float64) for name, value in
            zip(PROPERTIES, (flux, size, background, centring))}


def image_properties(store_path: Path, img_size: int, stretch: str = "none",
                     chunk: int = 512) -> dict[str, np.ndarray]:
    """:func:`pixel_properties` of every image of the store, from its normalised pixels resized to ``img_size``
    exactly as the encoder sees them (the store's normaliser with ``stretch``, then the centre view)."""
    normalise = loader.Normaliser.for_store(store_path, torch.device("cpu"), stretch)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in PROPERTIES}
    for _, images in store.iter_image_chunks(store_path, chunk=chunk):
        pixels = centre_view(normalise(loader.channels_first(images, torch.device("cpu"))), img_size)
        for name, values in pixel_properties(pixels).items():
            parts[name].append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def principal_scores(embeddings: np.ndarray, components: int) -> np.ndarray:
    """The (N, components) scores of the embeddings on their top principal components (PCA on all rows)."""
    return PCA(n_components=components, random_state=0).fit_transform(np.asarray(embeddings, dtype=np.float64))


def component_correlations(embeddings: np.ndarray, properties: dict[str, np.ndarray],
                           components: int = 5) -> dict:
    r"""Spearman's rank correlation :math:`\rho` (``scipy.stats.spearmanr``) between the score on each of
    the top ``components`` principal components and each property.

    A principal component's sign is arbitrary, so read ``|ρ|``; ``rho[i][j]`` is component ``i + 1``
    against ``properties[j]``.
    """
    scores = principal_scores(embeddings, components)
    names = list(properties)
    rho = [[float(spearmanr(scores[:, i], properties[name]).statistic) for name in names]
           for i in range(components)]
    return {"components": [f"PC{i + 1}" for i in range(components)], "properties": names, "rho": rho}


def property_correlations(properties: dict[str, np.ndarray]) -> dict:
    """Spearman ρ between every pair of properties (which of them move together), ``rho[i][j]`` for names i, j."""
    names = list(properties)
    rho = np.atleast_2d(spearmanr(np.column_stack([properties[name] for name in names])).statistic)
    return {"properties": names, "rho": [[float(v) for v in row] for row in rho]}


def remove_top_components(embeddings: np.ndarray, k: int, fit_rows: np.ndarray | None = None) -> np.ndarray:
    r"""The embeddings with their top ``k`` principal directions projected out:
    :math:`z - (z - \mu) V_k V_k^\top`, with the mean μ and directions :math:`V_k` fitted on ``fit_rows``
    (all rows by default; pass the train split to leave the test rows out of the fit)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if k == 0:
        return embeddings.astype(np.float32)
    fit = embeddings if fit_rows is None else embeddings[fit_rows]
    pca = PCA(n_components=k, random_state=0).fit(fit)
    directions = pca.components_
    residual = embeddings - ((embeddings - pca.mean_) @ directions.T) @ directions
    return residual.astype(np.float32)


class WithHead(nn.Module):
    """An encoder and a head on its embedding, returning both side by side: ``[z, head(z)]``.

    Feeding this to :func:`astrojepa_cli.evaluate.features.extract` embeds every image once and
    gives the (D4-averaged) embedding and head output from the same pass.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.in_chans = encoder.in_chans
        self.timm_spec = encoder.timm_spec
        self.input_size = getattr(encoder, "input_size", None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        embedding = self.encoder(images)
        return torch.cat([embedding, self.head(embedding)], dim=1)


def embedding_and_head_features(encoder: nn.Module, head: nn.Module, store_path: Path,
                                device: torch.device | str = "cpu", stretch: str = "none",
                                tta: str = "d4") -> tuple[Features, Features]:
    """The encoder's embeddings and the head's outputs of every image of the store (each D4-averaged
    with ``tta="d4"``: the head sees each rotated copy's embedding, and its outputs are averaged)."""
    both = extract(WithHead(encoder, head), store_path, device, stretch=stretch, tta=tta)
    width = encoder.embed_dim

    def part(columns: slice) -> Features:
        return Features(np.ascontiguousarray(both.embeddings[:, columns]), both.labels, both.ids, both.split,
                        both.targets)

    return part(slice(0, width)), part(slice(width, None))


def temperature_trajectory(metrics_path: Path) -> dict[str, list[float]]:
    """The logged ``temperature`` against ``step`` (empty lists for a run without a learnable temperature)."""
    rows = [row for row in read_metrics(metrics_path) if "temperature" in row]
    return {"step": [int(row["step"]) for row in rows], "temperature": [float(row["temperature"]) for row in rows]}
