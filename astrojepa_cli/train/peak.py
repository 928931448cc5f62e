r"""The machine's measured peak: its best matmul and convolution rates in fp32 and in bf16.

A data sheet gives no peak for a virtual CPU, and the clock, the vector units and the
library's kernels all decide it, so it is measured: a few square matmuls, 3×3
convolutions of training-like shapes and a ViT-T's attention (forward and backward), in
both precisions, alternating rounds so a shared machine's drift hits both. The rate of
one shape is the median over rounds of

.. math:: R = \frac{F}{t}, \qquad F_{mm} = 2 n^3, \qquad F_{conv} = 2 N H W C_{out} C_{in} k^2,
          \qquad F_{attn} = 3 \cdot 4 B h T^2 d

(a multiply and an add per term; attention's backward counted as twice its forward, as
``torch.utils.flop_counter`` does), and the peak is the best shape's rate. It takes a
few seconds, and the result is cached per machine under the astrojepa home
(``machine/peak.json``), keyed by CPU model, flags, torch version and thread count.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path

import torch

from astrojepa_cli import atomic, paths
from astrojepa_cli.runs.machine import cpu_model_and_flags

PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
MATMUL_SIZES = (256, 1024)
# (batch, channels, side): a ResNet's early and late stages on 32-48 px cutouts.
CONV_SHAPES = ((16, 64, 32), (16, 128, 16))
# (batch, heads, tokens, head width): a ViT-T on 32 px images in 4 px patches.
ATTENTION_SHAPE = (16, 3, 64, 64)
ROUNDS = 3


def cache_path(root: Path | None = None) -> Path:
    return paths.home(root) / "machine" / "peak.json"


def machine_key() -> str:
    """What the peak depends on: CPU model and flags, torch version and torch's thread count."""
    model, flags = cpu_model_and_flags()
    text = "|".join([model, " ".join(sorted(flags)), torch.__version__, str(torch.get_num_threads())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _matmul(size: int, dtype: torch.dtype):
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return (lambda: torch.mm(a, b)), 2.0 * size**3


def _convolution(shape: tuple[int, int, int], dtype: torch.dtype):
    batch, channels, side = shape
    images = torch.randn(batch, channels, side, side, dtype=dtype).to(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(dtype=dtype, memory_format=torch.channels_last)
    conv.requires_grad_(False)
    return (lambda: conv(images)), 2.0 * batch * side * side * channels * channels * 9


def _attention(dtype: torch.dtype):
    batch, heads, tokens, width = ATTENTION_SHAPE
    query = torch.randn(batch, heads, tokens, width, dtype=dtype)

    def run():
        with torch.enable_grad():
            inputs = [query.clone().requires_grad_(True) for _ in range(3)]
            torch.nn.functional.scaled_dot_product_attention(*inputs).sum().backward()

    return run, 3.0 * 4 * batch * heads * tokens * tokens * width


def _seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(rounds: int = ROUNDS) -> dict:
    """GFLOP/s of the best matmul, convolution and attention, per precision (see module docstring)."""
    kernels = {("matmul", size, p): _matmul(size, dtype) for size in MATMUL_SIZES for p, dtype in PRECISION_DTYPES.items()}
    kernels.update({("conv", shape, p): _convolution(shape, dtype) for shape in CONV_SHAPES
                    for p, dtype in PRECISION_DTYPES.items()})
    kernels.update({("attention", ATTENTION_SHAPE, p): _attention(dtype) for p, dtype in PRECISION_DTYPES.items()})
    with torch.no_grad():
        for run, _ in kernels.values():  # first calls choose and pack oneDNN kernels
            run()
        times: dict = {key: [] for key in kernels}
        for _ in range(rounds):
            for key, (run, _) in kernels.items():
                times[key].append(_seconds(run))
    rates: dict = {}
    for key, (_, flops) in kernels.items():
        kind, _, precision = key
        rate = round(flops / statistics.median(times[key]) / 1e9, 1)
        rates.setdefault(kind, {})[precision] = max(rates.get(kind, {}).get(precision, 0.0), rate)
    return rates


def machine_peak(root: Path | None = None, refresh: bool = False) -> dict:
    """This machine's peak record (``{"matmul": {"fp32": GFLOP/s, "bf16": …}, "conv": {…}, "attention": …}``),
    from the cache, or measured (seconds) and cached."""
    path = cache_path(root)
    key = machine_key()
    cache = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    if key in cache and "attention" in cache[key] and not refresh:
        return cache[key]
    model, _ = cpu_model_and_flags()
    record = {**measure(), "cpu": model, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic.write_json(path, {**cache, key: record})
    return record
