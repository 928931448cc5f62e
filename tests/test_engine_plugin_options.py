"""One way to build a plugin: ``registry.create`` refuses an option the factory does not take, and every
registry error is a ``PluginError`` that the CLI reports as one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

import registry
from registry import PluginError


def test_unknown_option_names_the_plugin_and_the_option():
    with pytest.raises(PluginError, match=r"encoder 'resnet18' has no option img_size; it takes in_chans"):
        registry.create("encoder", "resnet18", img_size=32)


def test_a_factory_taking_any_option_gets_them_all():
    @registry.register("masker", "test-any-options", override=True)
    def any_options(**options):
        """Test-only: returns the options it was given."""
        return options

    assert registry.create("masker", "test-any-options", colour="red") == {"colour": "red"}


def test_plugin_settings_errors_are_plugin_errors():
    encoder = registry.create("encoder", "vit-t", img_size=16, patch_size=8, in_chans=1, depth=1)
    with pytest.raises(PluginError, match="lam must lie in"):
        registry.create("loss", "lejepa", encoder=encoder, lam=2.0)
    with pytest.raises(PluginError, match="unknown loss"):
        registry.create("loss", "lejepaa")


def test_a_plugin_error_in_pretrain_is_one_error_line(cli, blob_store):
    result = cli("pretrain", "--data", "blobs", "--arch", "convnext-atto", "--loss", "simclr", "--img-size", "16",
                 "--quiet", expect=2)
    assert result.stderr.startswith("error: convnext-atto downsamples by 32")
    assert len(result.stderr.strip().splitlines()) == 1


def test_importing_the_pretrain_command_does_not_load_torch():
    code = "import sys, astrojepa_cli.commands.pretrain; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
