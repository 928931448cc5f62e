"""Encoders: any channel count, a global embedding, patch tokens for ViTs, and ResNet-15-GN as specified."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import registry
from astrojepa_cli import runs
from registry import PluginError


ENCODERS = ("vit-t", "vit-s", "vit-b", "resnet18", "resnet34", "resnet50", "resnet15-gn", "convnextv2-nano")
WIDTHS = {"vit-t": 192, "vit-s": 384, "vit-b": 768, "resnet18": 512, "resnet34": 512, "resnet50": 2048,
          "resnet15-gn": 512, "convnextv2-nano": 640}


def _encoder(name: str, in_chans: int, img_size: int = 32):
    from registry.objective import build_encoder

    return build_encoder(name, in_chans, img_size, patch_size=8)


@pytest.mark.parametrize("name", ENCODERS)
def test_every_encoder_embeds_any_channel_count(name):
    assert name in registry.names("encoder")
    for channels in (1, 2, 3) if name in ("vit-t", "resnet15-gn") else (2,):
        encoder = _encoder(name, channels).eval()
        with torch.no_grad():
            embedding = encoder(torch.randn(2, channels, 32, 32))
        assert embedding.shape == (2, WIDTHS[name]) == (2, encoder.embed_dim)
        assert encoder.in_chans == channels and torch.isfinite(embedding).all()


def test_vit_tokens_are_the_normed_patches_the_embedding_averages():
    encoder = _encoder("vit-t", 1).eval()
    images = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        tokens = encoder.forward_tokens(images)
        kept = encoder.forward_tokens(images, keep=torch.tensor([[0, 5, 9]] * 3))
        embedding = encoder(images)
    assert tokens.shape == (3, 16, 192) and kept.shape == (3, 3, 192)
    torch.testing.assert_close(embedding, tokens.mean(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tokens.std(-1, unbiased=False).mean(), torch.tensor(1.0), rtol=0.05, atol=0)


def test_cnns_have_no_patch_tokens():
    assert _encoder("resnet18", 3).patch_size is None
    with pytest.raises(TypeError, match="no patch tokens"):
        _encoder("resnet18", 3).forward_tokens(torch.randn(1, 3, 32, 32))


def test_resnet15_gn_is_fifteen_layers_of_groupnorm_widening_to_512_with_dropout():
    encoder = _encoder("resnet15-gn", 2)
    convolutions = [m for m in encoder.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(convolutions) == 15
    assert [c.out_channels for c in convolutions][::2] == [64, 64, 64, 128, 128, 256, 256, 512]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in encoder.modules()) > 0
    images = torch.randn(4, 2, 32, 32)
    encoder.train()
    assert not torch.equal(encoder(images), encoder(images)), "dropout inactive in training"
    encoder.eval()
    assert torch.equal(encoder(images), encoder(images))


@pytest.mark.parametrize("name", ["resnet15-gn", "vit-t"])
def test_saved_encoder_rebuilds_from_its_spec(tmp_path, name):
    encoder = _encoder(name, 2).eval()
    run = runs.Run(tmp_path, {"status": "completed"})
    runs.save_encoder(run, encoder, name)
    rebuilt = runs.load_encoder(run)
    images = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), encoder(images))


def test_convnext_rejects_images_it_would_shrink_to_nothing():
    with pytest.raises(PluginError, match="img-size >= 32"):
        _encoder("convnextv2-nano", 3, img_size=16)


def test_cli_lists_every_encoder(cli):
    listed = cli.json("plugins")["encoder"]
    assert set(ENCODERS) <= set(listed)
