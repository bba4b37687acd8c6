"""What pruning reads of a model's structure, never from its class: the BatchNorm after each layer and the one layer
reading each conv's channels, from the model itself (prunekit's conv nets) or from its traced forward graph (a
reader's model), checked against the structure each model is written with."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.core.config import ModelConfig
from prunekit.core.models import build_model
from prunekit.core.prunable import prunable_parameters
from prunekit.core.registry import MODELS
from prunekit.pruning import cycles as Cy
from prunekit.pruning.masks import masks_applied
from prunekit.pruning.structure import channel_consumers, following_batchnorms, traced_channel_consumers


def _net(arch, batch_norm=True):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, width_mult=0.25, **({} if MODELS[arch].kind == "fc" else {"batch_norm": batch_norm}))
    return build_model(cfg, (1, 8, 8), 10).eval()


def _next_leaf_batchnorms(model, params):
    """The rule prunekit's models were written to (conv -> BN -> act in the order they register them): the leaf
    module registered right after each layer, if it is a BatchNorm with as many features."""
    leaves = [m for m in model.modules() if not list(m.children())]
    out = []
    for module, name in params:
        i = next(i for i, m in enumerate(leaves) if m is module)
        nxt = leaves[i + 1] if i + 1 < len(leaves) else None
        ok = isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == getattr(module, name).shape[0]
        out.append(nxt if ok else None)
    return out


@pytest.mark.parametrize("arch", MODELS.names())
@pytest.mark.parametrize("batch_norm", [True, False])
def test_the_trace_pairs_every_registered_model_as_it_is_written(arch, batch_norm):
    model = _net(arch, batch_norm)
    params = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert following_batchnorms(model, params) == _next_leaf_batchnorms(model, params)
    own = model.channel_consumers() if hasattr(model, "channel_consumers") else []
    assert traced_channel_consumers(model) == own  # the model's own answer, read again from its graph


def test_prunekit_models_name_the_layer_reading_each_channel():
    conv = _net("conv")
    c1, c2 = [m for m in conv.features if isinstance(m, nn.Conv2d)]
    assert channel_consumers(conv) == [(c1, c2), (c2, conv.classifier[1])]
    resnet = _net("resnet20")
    assert channel_consumers(resnet) == [(b.conv1, b.conv2) for b in resnet.stages]
    assert len(channel_consumers(resnet)) == 9  # the second conv of a block feeds the residual sum: not prunable


class Mine(nn.Module):
    """A reader's conv net, registered in another order than it runs (``bn2`` before ``c2``) and with functional
    activations: conv -> BN -> relu -> conv -> BN -> relu -> pool -> flatten -> Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(5)
        self.c2 = nn.Conv2d(6, 5, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.head = nn.Linear(5 * 4 * 4, 10)

    def forward(self, x):
        h = torch.relu(self.bn1(self.c1(x)))
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn2(self.c2(h))), 2)
        return self.head(torch.flatten(h, 1))


def test_a_readers_conv_net_gets_channel_pruning_through_its_trace():
    torch.manual_seed(0)
    model = Mine().eval()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.weight.uniform_(0.1, 2.0)
    assert channel_consumers(model) == [(model.c1, model.c2), (model.c2, model.head)]
    assert following_batchnorms(model, [(model.c1, "weight"), (model.c2, "weight")]) == [model.bn1, model.bn2]
    assert Cy.slimmable_convs(model) == [(model.c1, "weight"), (model.c2, "weight")]
    masks = Cy.next_masks(model, None, "channel", 0.5)
    keep1, keep2 = masks.for_params(model, Cy.slimmable_convs(model)).units
    gammas = torch.cat([model.bn1.weight.abs(), model.bn2.weight.abs()]).detach()
    pruned = round(0.5 * 11)  # half of the 11 channels, the smallest |gamma| over both layers
    assert int((~torch.cat([keep1, keep2])).sum()) == pruned
    assert set(torch.argsort(gammas)[:pruned].tolist()) == set((~torch.cat([keep1, keep2])).nonzero()[:, 0].tolist())
    # conv weights in use: the kept filters, less c2's inputs from c1's pruned channels (counted by hand)
    want = int(keep1.sum()) * 1 * 9 + int(keep2.sum()) * int(keep1.sum()) * 9
    assert Cy.kept_conv_weights(model, masks) == want
    x = torch.randn(4, 1, 8, 8)
    params = Cy.slimmable_convs(model)
    with masks_applied(params, masks.for_params(model, params), model=model):  # a pruned channel outputs exactly 0
        h = torch.relu(model.bn1(model.c1(x)))
    assert bool((h[:, ~keep1] == 0).all())


class Residual(nn.Module):
    """Every conv's output also feeds a residual sum: no channel can go without changing the other branch."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn1 = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        h = torch.relu(self.bn1(self.c1(x))) + x
        return self.head(h.mean((2, 3)))


class Untraceable(nn.Module):
    """Python control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn1, self.c2 = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3)

    def forward(self, x):
        h = self.bn1(self.c1(x))
        return self.c2(h) if h.sum() > 0 else h


def test_a_model_the_trace_cannot_pair_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="channel pruning works on conv nets whose channels each feed exactly one"):
        Cy.slimmable_convs(Residual())
    with pytest.raises(ValueError, match="torch.fx"):
        Cy.slimmable_convs(Untraceable())
    with pytest.raises(ValueError, match="torch.fx"):
        following_batchnorms(Untraceable(), [(Untraceable().c1, "weight")])
    mlp = build_model(ModelConfig(arch="mlp"), (1, 8, 8), 10)
    assert following_batchnorms(mlp, prunable_parameters(mlp)) == [None, None]  # no BatchNorm: nothing traced

