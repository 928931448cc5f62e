"""Words for figures: method, encoder, class and probe names as a paper would print them, and tick
labels with no more digits than the axis needs."""

from __future__ import annotations

import math
import re

from matplotlib.ticker import Formatter

METHODS = {"lejepa": "LeJEPA", "ijepa": "I-JEPA", "ijepa-sigreg": "I-JEPA with SIGReg", "simclr": "SimCLR",
           "vicreg": "VICReg"}
# Protocol key parts (evaluate.probes.protocols and the feature suffixes of probe_run) in words.
PROTOCOLS = {"linear": "linear probe", "few-shot": "few-shot linear probe",
             "few-shot-vs-scratch": "few-shot linear probe against training from scratch",
             "label-fraction": "label-fraction linear probe", "finetune": "fine-tuning"}
FEATURE_SUFFIXES = {"-random-init": "of random weights", "-last2": "last two stages", "-cls": "class token",
                    "-layernorm": "layer-normed features", "-d4": "averaged over 8 rotations and flips",
                    "-pretrained": "pretrained encoder"}


def method_name(loss: str) -> str:
    """``lejepa`` -> ``LeJEPA``; a plugin's name as it is."""
    return METHODS.get(loss, loss)


def encoder_name(arch: str) -> str:
    """``vit-t`` -> ``ViT-T``, ``resnet18`` -> ``ResNet-18``, ``resnet18-w32`` -> ``ResNet-18 (width 32)``."""
    if arch.startswith("vit-"):
        return "ViT-" + arch[4:].upper()
    found = re.fullmatch(r"resnet(\d+)(?:-w(\d+))?", arch)
    if found:
        return f"ResNet-{found[1]}" + (f" (width {found[2]})" if found[2] else "")
    return arch


def trained_on(manifest: dict) -> str:
    """``LeJEPA, ViT-T encoder, on gz1``: what a run trained, in words."""
    config = manifest.get("config", {})
    parts = [method_name(config["loss"]) if config.get("loss") else None,
             f"{encoder_name(config['arch'])} encoder" if config.get("arch") else None]
    what = ", ".join(part for part in parts if part)
    return f"{what}, on {manifest.get('dataset', {}).get('name', 'unknown data')}"


def class_label(name: str) -> str:
    """A class name for a tick or legend: ``edge_on`` -> ``edge-on``."""
    return name.replace("_", "-")


def base_protocol(protocol: str) -> str:
    """The protocol without its feature and random-weights parts: ``few-shot-last2`` -> ``few-shot``."""
    for suffix in FEATURE_SUFFIXES:
        protocol = protocol.replace(suffix, "")
    return protocol


def probe_name(protocol: str) -> str:
    """``linear-last2`` -> ``linear probe, last two stages``; ``knn-20`` -> ``20-nearest-neighbour probe``."""
    notes = []
    for suffix, words in FEATURE_SUFFIXES.items():
        if suffix in protocol:
            protocol = protocol.replace(suffix, "")
            notes.append(words)
    if found := re.fullmatch(r"knn-(\d+)", protocol):
        base = f"{found[1]}-nearest-neighbour probe"
    elif found := re.fullmatch(r"(regression|finetune)-(.+)", protocol):
        base = f"{'linear regression' if found[1] == 'regression' else 'fine-tuning'} of {found[2]}"
    else:
        base = PROTOCOLS.get(protocol, protocol)
    random = "of random weights" in notes
    rest = [note for note in notes if note != "of random weights"]
    return base + (" of random weights" if random else "") + "".join(f", {note}" for note in rest)


def titled(heading: str, title: str | None) -> str:
    """A figure's own ``heading``, under the user's ``plot --title`` line when given."""
    return f"{title}\n{heading}" if title else heading


class FewestDigits(Formatter):
    """Tick labels with the fewest significant figures (at least two, and every digit of the integer
    part) that give every tick exactly: ``0.0703``, not ``0.07030``; ``0.1075``, not ``0.107``."""

    digits = 3

    def set_locs(self, locs) -> None:
        finite = sorted(v for v in locs if math.isfinite(v))
        magnitudes = [abs(v) for v in finite if v != 0]
        integer_digits = int(math.floor(math.log10(max(magnitudes)))) + 1 if magnitudes else 1
        spacing = min((b - a for a, b in zip(finite, finite[1:]) if b > a), default=max(magnitudes, default=1.0))
        for digits in range(max(2, integer_digits), 10):
            if all(abs(float(f"{v:.{digits}g}") - v) <= 1e-6 * spacing for v in finite):
                break
        self.digits = digits

    def __call__(self, x, pos=None) -> str:
        return f"{x:.{self.digits}g}"
