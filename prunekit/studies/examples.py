"""Two small models that are not prunekit's, for notebook 07 ("Your model") and its tests: the kinds of network a
reader brings. Each is a factory, named as notebook 07's ``model`` parameter takes it (``"prunekit.studies.examples:tiny_resnet"``).

- :func:`tiny_resnet`: torchvision's own ``ResNet`` class with one ``BasicBlock`` per stage (a ResNet-10 of widths
  64-512), its stem made for small one-channel images (a 3x3 stride-1 convolution, no max-pool);
- :func:`tiny_transformer`: ``nn.Embedding`` -> ``nn.TransformerEncoderLayer`` -> ``nn.LayerNorm`` -> mean pool ->
  ``nn.Linear``, reading an image as a sequence of pixel tokens (each pixel's value cut into ``levels`` bins).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.checks import count, number

__all__ = ["tiny_resnet", "PixelTransformer", "tiny_transformer"]


def tiny_resnet(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """torchvision's ``ResNet(BasicBlock, [1, 1, 1, 1])`` (4.9 M parameters at 10 classes) with a 3x3 stride-1
    first convolution over ``in_channels`` channels and no max-pool, for inputs as small as 8x8."""
    from torchvision.models.resnet import BasicBlock, ResNet

    num_classes, in_channels = count("num_classes", num_classes), count("in_channels", in_channels)
    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


class PixelTransformer(nn.Module):
    """A one-layer transformer encoder over the pixels of an image: pixel ``i``'s value, cut into ``levels`` bins
    between ``low`` and ``high``, is token ``i`` (embedded, plus a learned position); the encoded tokens are
    normalised, averaged and classified by a Linear head."""

    def __init__(self, num_classes: int = 10, pixels: int = 64, d_model: int = 32, nhead: int = 4,
                 dim_feedforward: int = 64, levels: int = 17, low: float = -1.0, high: float = 2.0):
        super().__init__()
        num_classes, pixels = count("num_classes", num_classes), count("pixels", pixels)
        d_model = count("d_model", d_model)
        nhead, dim_feedforward = count("nhead", nhead, high=d_model), count("dim_feedforward", dim_feedforward)
        if d_model % nhead:
            raise ValueError(f"nhead={nhead} must divide d_model={d_model} (each head takes d_model / nhead)")
        levels = count("levels", levels, low=2)
        low, high = number("low", low), number("high", high)
        if not low < high:
            raise ValueError(f"low={low!r} must be below high={high!r}")
        self.register_buffer("edges", torch.linspace(low, high, levels - 1))
        self.embed = nn.Embedding(levels, d_model)
        self.position = nn.Parameter(0.1 * torch.randn(pixels, d_model))
        self.encoder = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = torch.bucketize(x.flatten(1), self.edges)  # [N, pixels] in 0..levels-1
        return self.head(self.norm(self.encoder(self.embed(tokens) + self.position)).mean(1))


def tiny_transformer(num_classes: int = 10, pixels: int = 64, d_model: int = 32) -> nn.Module:
    """A :class:`PixelTransformer` for 8x8 images (64 tokens), width ``d_model``. It trains with Adam, not on notebook
    07's default SGD schedule: ``optimizer="torch.optim:Adam"``, ``lrs=[0.01] * 10 + [0.001] * 2`` reach 77.1% on
    digits' test split, the ``quick`` profile's SGD ``[0.05, 0.05, 0.01]`` 19.6%."""
    return PixelTransformer(num_classes, pixels, d_model)
