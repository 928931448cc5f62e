"""The CPU a run trained on: its model name and the matrix instructions torch's kernels may use.

Read from ``/proc/cpuinfo`` (Linux); elsewhere the model falls back to :mod:`platform`
and the flag set is empty, so nothing claims instructions it cannot see.
"""

from __future__ import annotations

import platform

# The flags that decide how fast bf16 matmuls and convolutions run on x86: AMX tiles
# (Sapphire Rapids and later), the AVX-512 bf16 dot product (Cooper Lake, Zen 4), plain AVX-512.
MATRIX_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f")


def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """The first CPU's model name and its flag set from ``/proc/cpuinfo``."""
    model, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = frozenset(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def matrix_features(flags: frozenset[str] | set[str]) -> list[str]:
    """The matrix-relevant instruction sets among ``flags``, in :data:`MATRIX_FLAGS` order."""
    return [name for name in MATRIX_FLAGS if name in flags]


def cpu_record() -> dict:
    """The CPU's model and matrix instructions, as a run manifest's environment records them."""
    model, flags = cpu_model_and_flags()
    return {"cpu": model, "cpu_matrix_features": matrix_features(flags)}
