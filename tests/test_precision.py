"""The precision a run trains in: the CPU capability check, the recorded choice, and that the step uses it."""

from __future__ import annotations

import json

import pytest
import torch

from astrojepa_cli.train import peak
from astrojepa_cli.train.build import to_training_layout
from astrojepa_cli.train.config import PretrainConfig
from astrojepa_cli.train.precision import choose_by_peak, choose_by_steps, cpu_bf16_capable, fixed_choice
from astrojepa_cli.train.step import forward
from astrojepa_cli.runs.machine import cpu_model_and_flags
from registry.objective import build_objective
from tests.conftest import TINY_PRETRAIN

CPU = torch.device("cpu")
# TINY_PRETRAIN trains in fp32 to keep the suite off the peak measurement; these tests choose for themselves.
TINY_SIMCLR = (*TINY_PRETRAIN[:TINY_PRETRAIN.index("--precision")], *TINY_PRETRAIN[TINY_PRETRAIN.index("--precision") + 2:],
               "--local-views", "0", "--loss", "simclr", "--max-steps", "2")
THIS_CPU_HAS_BF16 = cpu_bf16_capable(cpu_model_and_flags()[1])


def test_a_cpu_without_bf16_instructions_falls_back_to_fp32_with_one_line():
    zen2_like = frozenset({"sse4_2", "avx", "avx2", "fma"})
    assert not cpu_bf16_capable(zen2_like, kernels_support_bf16=True)
    assert cpu_bf16_capable(zen2_like | {"avx512_bf16"}, kernels_support_bf16=True)
    assert cpu_bf16_capable(zen2_like | {"amx_bf16"}, kernels_support_bf16=True)
    # oneDNN's own verdict must agree: flags alone do not make a build of torch use them.
    assert not cpu_bf16_capable(zen2_like | {"avx512_bf16"}, kernels_support_bf16=False)
    for requested in ("auto", "bf16"):
        choice = fixed_choice(requested, CPU, flags=zen2_like)
        assert choice.used == "fp32" and choice.fell_back
        assert "\n" not in choice.reason and "bf16" in choice.reason
    assert not fixed_choice("fp32", CPU, flags=zen2_like).fell_back


def test_forced_and_gpu_choices_need_no_measurement():
    bf16_cpu = frozenset({"avx512f", "avx512_bf16"})
    if THIS_CPU_HAS_BF16:
        assert fixed_choice("bf16", CPU, flags=bf16_cpu).used == "bf16"
    assert fixed_choice("auto", CPU, flags=bf16_cpu) is None  # measured
    assert fixed_choice("auto", torch.device("cuda")).used == "bf16"
    assert fixed_choice("fp32", torch.device("cuda")).used == "fp32"
    assert choose_by_steps("auto", {"fp32": 0.30, "bf16": 0.35}).used == "fp32"
    assert choose_by_steps("auto", {"fp32": 0.30, "bf16": 0.20}).used == "bf16"


@pytest.mark.parametrize("arch, loss, options", [("resnet18-w16", "simclr", {"local_views": 0}),
                                                   ("vit-t", "lejepa", {"patch_size": 4, "local_views": 2})])
def test_bf16_and_fp32_steps_start_from_the_same_loss(arch, loss, options):
    """Same weights, batch and views: the bf16 loss is within 2% of the fp32 loss (measured: under 1%)."""
    config = PretrainConfig(data="blobs", arch=arch, loss=loss, img_size=16, batch_size=16,
                            **options).with_method_defaults()
    torch.manual_seed(0)
    objective = to_training_layout(build_objective(config, 3, 16), CPU)
    images = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    terms = {p: forward(objective, images, 0, torch.Generator().manual_seed(5), p) for p in ("fp32", "bf16")}
    fp32, bf16 = terms["fp32"]["loss"].item(), terms["bf16"]["loss"].item()
    assert bf16 == pytest.approx(fp32, rel=0.02) and bf16 != fp32
    if arch.startswith("resnet"):  # the pooled features of bf16 convolutions are bf16 numbers
        embedding = terms["bf16"]["embedding"]
        assert bool((embedding.bfloat16().float() == embedding).all())


class AutocastSeen:
    """Records the CPU autocast state at every forward of a convolution in training mode (a real global hook).

    Convolutions belong to the encoder (a ViT's patch embedding is one), not to the online probe,
    which learns from detached embeddings in fp32."""

    def __init__(self) -> None:
        self.states: set = set()

    def __call__(self, module, inputs, output) -> None:
        if module.training and isinstance(module, torch.nn.Conv2d):
            enabled = torch.is_autocast_enabled("cpu")
            self.states.add(torch.get_autocast_dtype("cpu") if enabled else torch.float32)

    def __enter__(self):
        self.handle = torch.nn.modules.module.register_module_forward_hook(self)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def _manifest(home, result: dict) -> dict:
    return json.loads((home / "runs" / result["run_id"] / "manifest.json").read_text())


def test_forced_precision_is_recorded_and_used_by_the_step(cli, blob_store, home):
    with AutocastSeen() as seen:
        result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--precision", "fp32")
    assert _manifest(home, result)["precision"] == {"requested": "fp32", "used": "fp32", "reason": "as asked"}
    assert seen.states == {torch.float32}
    if not THIS_CPU_HAS_BF16:
        return
    with AutocastSeen() as seen:
        result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--precision", "bf16")
    assert _manifest(home, result)["precision"]["used"] == "bf16"
    assert seen.states == {torch.bfloat16}
    environment = _manifest(home, result)["environment"]
    assert "avx512_bf16" in environment["cpu_matrix_features"] or "amx_bf16" in environment["cpu_matrix_features"]


@pytest.mark.skipif(not THIS_CPU_HAS_BF16, reason="auto measures only on a CPU with bf16 instructions")
@pytest.mark.parametrize("bf16_conv_gflops, expected", [(10.0, "fp32"), (90.0, "bf16")])
def test_auto_without_a_budget_follows_the_cached_peak(cli, blob_store, home, bf16_conv_gflops, expected):
    """The machine's cached peak decides; a CNN compares convolution rates (here written into the cache)."""
    record = {"matmul": {"fp32": 50.0, "bf16": 100.0}, "conv": {"fp32": 50.0, "bf16": bf16_conv_gflops},
              "attention": {"fp32": 50.0, "bf16": 20.0}}
    peak.cache_path().parent.mkdir(parents=True)
    peak.cache_path().write_text(json.dumps({peak.machine_key(): record}))
    with AutocastSeen() as seen:
        result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--arch", "resnet18-w16")
    choice = _manifest(home, result)["precision"]
    assert choice["requested"] == "auto" and choice["used"] == expected
    assert choice["rates"] == {"conv_gflops": record["conv"]}
    assert seen.states == {torch.float32 if expected == "fp32" else torch.bfloat16}


def test_a_vit_needs_both_its_matmuls_and_its_attention_faster_in_bf16(home):
    record = {"matmul": {"fp32": 50.0, "bf16": 100.0}, "conv": {"fp32": 50.0, "bf16": 90.0},
              "attention": {"fp32": 5.0, "bf16": 3.0}}
    peak.cache_path().parent.mkdir(parents=True)
    peak.cache_path().write_text(json.dumps({peak.machine_key(): record}))
    vit = choose_by_peak("auto", convolutional=False)
    assert vit.used == "fp32" and set(vit.rates) == {"matmul_gflops", "attention_gflops"}
    assert choose_by_peak("auto", convolutional=True).used == "bf16"


@pytest.mark.skipif(not THIS_CPU_HAS_BF16, reason="auto measures only on a CPU with bf16 instructions")
def test_auto_with_a_budget_times_both_precisions_and_keeps_the_faster(cli, blob_store, home):
    result = cli.json("pretrain", "--data", "blobs", *TINY_SIMCLR, "--budget", "120s")
    manifest = _manifest(home, result)
    rates = manifest["budget_plan"]["seconds_per_step_by_variant"]
    assert set(rates) == {"fp32", "bf16"}
    assert manifest["precision"]["used"] == min(rates, key=rates.get)
    assert manifest["budget_plan"]["seconds_per_step"] == min(rates.values())
    assert "avx512f" in manifest["budget_plan"]["machine"]["matrix_features"]


def test_the_peak_is_measured_once_and_cached_per_machine(home):
    first = peak.machine_peak()
    for kind in ("matmul", "conv", "attention"):
        assert first[kind]["fp32"] > 0 and first[kind]["bf16"] > 0
    cached = json.loads(peak.cache_path().read_text())
    assert list(cached) == [peak.machine_key()]
    cached[peak.machine_key()]["conv"]["fp32"] = -1.0  # a cached value is read back, not re-measured
    peak.cache_path().write_text(json.dumps(cached))
    assert peak.machine_peak()["conv"]["fp32"] == -1.0
