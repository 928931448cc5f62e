"""Plugins and run files from elsewhere: names cannot be taken silently, and an encoder file's
timm spec reaches timm only through an allow-list that every built-in encoder passes."""

from __future__ import annotations

import inspect

import pytest

import registry
from astrojepa_cli.errors import UserError
from astrojepa_cli.runs import checked_timm_spec


@pytest.mark.parametrize("name", registry.names("encoder"))
def test_every_built_in_encoder_spec_passes_the_allow_list(name):
    parameters = inspect.signature(registry.get("encoder", name).factory).parameters
    sizes = {k: v for k, v in {"img_size": 32, "patch_size": 8, "depth": 1}.items() if k in parameters}
    encoder = registry.create("encoder", name, in_chans=1, **sizes)
    assert checked_timm_spec(encoder.timm_spec, name) == encoder.timm_spec


@pytest.mark.parametrize("spec", [
    {"model_name": "resnet18", "checkpoint_path": "/tmp/weights.pth"},
    {"model_name": "resnet18", "pretrained": True},
    {"model_name": "hf-hub:someone/model"},
    {"model_name": "resnet18", "in_chans": [1, 2]},
    ["resnet18"],
])
def test_hostile_specs_are_refused(spec):
    with pytest.raises(UserError):
        checked_timm_spec(spec, "handed-over.safetensors")


def test_a_taken_name_is_refused_unless_the_plugin_asks_to_override():
    @registry.register("masker", "test-taken")
    def first():
        """The first."""

    with pytest.raises(registry.PluginError, match="already registered"):
        @registry.register("masker", "test-taken")
        def second():
            """The second."""

    @registry.register("masker", "test-taken", override=True)
    def third():
        """The third."""

    assert registry.describe("masker")["test-taken"] == "The third."
