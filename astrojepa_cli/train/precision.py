"""Which precision a run trains in: ``--precision fp32|bf16`` as asked, or ``auto`` chosen by measurement.

``auto`` is bf16 on CUDA. On a CPU, bf16 pays only where the CPU has bf16 matrix
instructions (AMX, or AVX512_BF16) *and* the model's kernels use them: a small model can
lose more to casts than its matmuls gain. So the choice is measured, cheapest first:

- with ``--budget``, the calibration times its steps in both precisions and keeps the
  faster (:func:`astrojepa_cli.train.budget.plan_steps`);
- without it, the machine's cached peak (:mod:`.peak`) decides: convolution rates for a
  convolutional encoder; for a ViT, bf16 only if both its matmuls and its attention are faster
  in bf16 (on an AVX512_BF16 CPU without AMX, bf16 attention is slower and costs the ViT more
  than its matmuls gain).

A CPU without bf16 instructions trains in fp32 and says so in one line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from astrojepa_cli.runs.machine import cpu_model_and_flags

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass
class PrecisionChoice:
    """The precision a run uses, what was asked, and why (recorded in the run manifest)."""

    requested: str
    used: str
    reason: str
    rates: dict | None = None
    fell_back: bool = False

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value not in (None, False)}


def cpu_bf16_capable(flags: frozenset[str] | set[str], kernels_support_bf16: bool | None = None) -> bool:
    """Whether a CPU with ``flags`` runs bf16 matrix kernels natively.

    ``kernels_support_bf16`` is oneDNN's own verdict for this build of torch (defaults to
    asking it); both must agree, since oneDNN emulates bf16 (slowly) on CPUs without the
    instructions.
    """
    if kernels_support_bf16 is None:
        kernels_support_bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return bool(kernels_support_bf16) and any(flag in flags for flag in BF16_FLAGS)


def fixed_choice(requested: str, device: torch.device, flags: frozenset[str] | None = None) -> PrecisionChoice | None:
    """The choice when no measurement is needed (None: a CPU ``auto`` that must be measured).

    ``flags`` are the CPU's (default: read from ``/proc/cpuinfo``).
    """
    if device.type != "cpu":
        used = "bf16" if requested == "bf16" or (requested == "auto" and device.type == "cuda") else "fp32"
        return PrecisionChoice(requested, used, "as asked" if requested != "auto" else f"auto on {device.type}")
    if requested == "fp32":
        return PrecisionChoice(requested, "fp32", "as asked")
    if flags is None:
        flags = cpu_model_and_flags()[1]
    if not cpu_bf16_capable(flags):
        reason = "this CPU has no bf16 matrix instructions (amx_bf16 or avx512_bf16): training in fp32"
        return PrecisionChoice(requested, "fp32", reason, fell_back=True)
    if requested == "bf16":
        return PrecisionChoice(requested, "bf16", "as asked")
    return None


def choose_by_peak(requested: str, convolutional: bool, root: Path | None = None) -> PrecisionChoice:
    """A CPU ``auto`` without a budget: the faster precision of the machine's peak measurement."""
    from astrojepa_cli.train.peak import machine_peak

    measured = machine_peak(root)
    kinds = ("conv",) if convolutional else ("matmul", "attention")
    faster = all(measured[kind]["bf16"] > measured[kind]["fp32"] for kind in kinds)
    return PrecisionChoice(requested, "bf16" if faster else "fp32",
                           f"faster {' and '.join(kinds)} in this machine's peak measurement (GFLOP/s)",
                           {f"{kind}_gflops": measured[kind] for kind in kinds})


def choose_by_steps(requested: str, seconds_per_step: dict[str, float]) -> PrecisionChoice:
    """A CPU ``auto`` with a budget: the precision whose calibration steps were faster."""
    used = min(seconds_per_step, key=seconds_per_step.get)
    return PrecisionChoice(requested, used, "faster calibration steps (seconds per step)",
                           {"seconds_per_step": {k: round(v, 4) for k, v in seconds_per_step.items()}})

