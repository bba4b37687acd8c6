"""Accuracy of a model with its ``k`` lowest-magnitude prunable weights zeroed, at many levels ``k`` (source 000's
effective-density search, :func:`prunekit.measures.density.effective_density`).

* :class:`Pruner`, the plain way: rank the magnitudes once, then for each level apply the masks in place
  (``prunekit.pruning.masks.masks_applied``, which restores the weights bitwise) and run the model on the split.
* :class:`IncrementalMLP`, the same accuracies for a plain fully connected net whose first layer reads the input
  (prunekit's ``MLP``, no hooks): pruning only zeroes weights and the pruned set at level ``k`` is a prefix of one
  order, so the first layer's pre-activations move from one level to another by a sparse product, and only the layers
  above are recomputed.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings

import torch
from torch import nn

from ..core.checks import choice, number
from ..core.device import model_device
from ..core.data import Split, as_split
from ..pruning.masks import check_params, masks_applied, weight_of
from ..core.prunable import checked_labels, logits_model, prunable_parameters
from ..core.weights import is_parametrized, storage
from ..pruning.scorers import scores_of
from ..pruning.select import masks_from_order, score_order
from ..core.runtime import adapt_threads
from ..core.train import correct_count, eval_mode, predict

__all__: list[str] = []  # internal: the public entry points are prunekit.measures.density' pruned_accuracy and effective_density


def check_scope(scope: str) -> str:
    """"global" or "layerwise" (alias "layer"), the scopes of prunekit.pruning.select."""
    return choice("scope", {"layer": "layerwise"}.get(scope, scope), ("global", "layerwise"))


def as_eval_split(data, device: torch.device | None = None, model: nn.Module | None = None,
                  output_fn=None) -> Split:
    """``data`` in any of :func:`prunekit.core.data.as_split`'s forms, as one Split on ``device`` when given; with
    ``model``, its targets checked and converted as class labels of the model's logits
    (``prunekit.core.prunable.checked_labels``: float or out-of-range labels refused before any compute)."""
    split = as_split(data)
    if model is not None:
        split = Split(split.x, checked_labels(model, split.x, split.y, output_fn=output_fn))
    return split if device is None else Split(split.x.to(device), split.y.to(device))


def search_batch_size(device: torch.device) -> int:
    """Samples per forward pass when one model is evaluated at many pruning levels: 4,096 on a GPU; 256 on the CPU,
    where a batch's activations then stay in the processor's cache (``bench_density`` on 2 cores, 2,000 MNIST
    images at 14x14: a level 1.78x faster for the ResNet at 5x width, 1.88x for the conv net at 5x, 1.75x for the
    ResNet at 1x, and 0.98x, as fast, for the conv net at 1x). The batch size changes only the speed: in eval mode
    a sample's output does not depend on its batch, up to the float rounding of the kernels."""
    return 4096 if torch.device(device).type == "cuda" else 256


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Accuracy only (no loss): ``prunekit.core.train``'s batched ``predict`` and its ``correct_count`` count."""
    return float(correct_count(predict(model, x, batch_size), y)) / max(1, x.shape[0])


class Pruner:
    """Evaluates ``model`` with its ``k`` lowest-scored prunable weights zeroed (global or per-layer ranking; ``|w|``
    by default, ``scorer``: a name of ``prunekit.pruning.scorers.SCORERS`` or a callable of that protocol, giving
    weight-shaped scores).

    Scores are ranked once (``prunekit.pruning.select.score_order``: ties by index); each evaluation runs
    under ``prunekit.pruning.masks.masks_applied``, which restores the weights bitwise. ``batch_size``: samples per forward
    pass (None: :func:`search_batch_size` for the model's device).
    """

    def __init__(self, model: nn.Module, split, include_output: bool = False, scope: str = "global",
                 batch_size: int | None = None, order=None, scorer="magnitude", *, params=None, output_fn=None):
        scope = check_scope(scope)
        if batch_size is None:
            batch_size = search_batch_size(model_device(model))  # where the forward passes run
        number("batch_size", batch_size, low=1, integer=True)
        self.model, self.split, self.scope, self.batch_size = logits_model(model, output_fn), split, scope, batch_size
        self.params = (prunable_parameters(model, include_output=include_output, example=split.x, output_fn=output_fn)
                       if params is None else check_params(params, model))
        self.tensors = [weight_of(m, a) for m, a in self.params]
        self.sizes = [t.numel() for t in self.tensors]
        self.n = sum(self.sizes)
        if order is not None:  # another evaluator's ranking of the same weights
            self.order = order
        elif scope == "global":
            self.order = score_order(self.params, scores_of(scorer, self.params, model=model, data=split))
        else:
            self.order = [score_order([p], scores_of(scorer, [p], model=model, data=split)) for p in self.params]

    def layer_counts(self, k: int) -> list[int]:
        """Weights pruned in each layer at level ``k``: the global ranking's split, or ``round(k * n_l / n)``."""
        if self.scope == "global":
            cut = self.order[:k]
            bounds = torch.tensor([0, *itertools.accumulate(self.sizes)], device=cut.device)
            return torch.bucketize(cut, bounds[1:], right=True).bincount(minlength=len(self.sizes)).tolist()
        return [round(k * size / self.n) for size in self.sizes]

    def masks(self, k: int) -> list[torch.Tensor]:
        if not 0 <= k <= self.n:
            raise ValueError(f"k={k} must be in [0, {self.n}]")
        if self.scope == "global":
            return masks_from_order(self.params, self.order, k)
        chunks = []  # the same fraction k/n in every layer, exactly round(k * n_l / n) weights per layer
        for order, size, count in zip(self.order, self.sizes, self.layer_counts(k)):
            flat = torch.ones(size, dtype=torch.bool, device=order.device)
            flat[order[:count]] = False
            chunks.append(flat)
        return [c.reshape(t.shape) for c, t in zip(chunks, self.tensors)]

    def pruned_count(self, k: int) -> int:
        if self.scope == "global":
            return k
        return sum(self.layer_counts(k))

    def accuracy(self, k: int) -> float:
        adapt_threads()
        with masks_applied(self.params, self.masks(k)):
            return _accuracy(self.model, self.split.x, self.split.y, self.batch_size)


def entries_csr(weight: torch.Tensor, flat_index: torch.Tensor) -> torch.Tensor:
    """The sparse CSR matrix holding ``weight``'s entries at the flat (row-major) indices ``flat_index`` and zeros
    elsewhere, on the weight's device (the indices are moved there: a ranking made on the CPU may name entries of a
    weight on a GPU). Row ``r``'s entries are those indices in ``[r * d_in, (r + 1) * d_in)``, columns ascending."""
    d_out, d_in = weight.shape
    idx = flat_index.to(weight.device).sort().values
    crow = torch.searchsorted(idx, torch.arange(d_out + 1, device=idx.device) * d_in)  # indices before each row
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, idx % d_in, weight.detach().reshape(-1)[idx], (d_out, d_in),
                                       check_invariants=False)


# Activations that write into a preallocated buffer (prunekit's MLP activations); any other is called as a module.
_ACTIVATION_INTO = {nn.ReLU: lambda z, out: torch.clamp_min(z, 0, out=out),  # torch's relu is clamp_min(z, 0)
                    nn.Sigmoid: lambda z, out: torch.sigmoid(z, out=out),
                    nn.Tanh: lambda z, out: torch.tanh(z, out=out)}


class IncrementalMLP(Pruner):
    """The accuracies of :class:`Pruner` for an ``MLP`` (``Flatten -> Linear -> ...``), computed incrementally.

    Pruning only zeroes weights, and the pruned set at level ``k`` is a prefix of the magnitude order, so the first
    layer's pre-activations at level ``k`` are those at the current level ``c`` minus (``k > c``) or plus (``k < c``)
    the contribution of the first-layer weights pruned between the two: ``Z_k^T = Z_c^T -/+ D X^T`` with the sparse
    (CSR) ``D`` holding just those weights (``N x |D|`` multiply-adds instead of ``N x d_in x d_out``), added into
    ``Z`` in place. A first-layer unit whose weights are all pruned gets its exact pre-activation, the bias (or 0), as
    the plain forward pass computes it. The layers above are recomputed, their weights pruned in place to level ``k``
    (zeroed, or restored from a saved copy when going down). Use as a context manager: on exit every weight is
    restored bitwise to its value when the evaluator was made. Evaluations run in eval mode, as ``predict`` does.

    ``Z``, the inputs and the buffers are kept in blocks of ``chunk`` samples, and each level runs block by block
    (update, activation, upper layers): a block's working set stays in the CPU's cache where the whole split's
    (tens of MB for 10,000 MNIST images) does not. ``bench_density`` measures the effect; 2,000 was the fastest
    block measured there (a power of two such as 2,048 was slower: rows that far apart compete for the same cache
    sets).

    The construction's pass (level 0) runs the model exactly as :func:`prunekit.core.train.predict` does (the same batches,
    the same operations), so ``dense_accuracy`` is bitwise the plain one and costs no second pass. Every later level,
    0 included, is evaluated from the moved ``Z``: float32, as the plain forward pass computes it, but summed in
    another order, so it differs from a full matrix product's by the order of that product's own rounding error (the
    search confirms its bracket the plain way, see :func:`prunekit.measures.density.effective_density`).

    Used only for a model without forward hooks (``torch.nn.utils.prune`` keeps its masks in hooks, and a hooked
    layer's ``weight`` is not what its forward uses); :meth:`applies` says so.
    """

    @staticmethod
    def applies(model: nn.Module, params) -> bool:
        hooked = any(m._forward_hooks or m._forward_pre_hooks or hasattr(m, "weight_orig")
                     or is_parametrized(m, "weight") for m in model.modules())
        return (not hooked and isinstance(model, nn.Sequential) and len(model) >= 3
                and isinstance(model[0], nn.Flatten) and type(model[1]) is nn.Linear and bool(params)
                and params[0][0] is model[1])

    def __init__(self, model: nn.Module, split, include_output: bool = False, scope: str = "global",
                 batch_size: int | None = None, order=None, chunk: int = 2000):
        if int(chunk) < 1:
            raise ValueError(f"chunk must be a positive number of samples, got {chunk!r}")
        super().__init__(model, split, include_output, scope, batch_size, order)
        batch_size = self.batch_size
        first = model[1]
        self.w1 = first.weight.detach()  # never modified: the first layer is pruned through Z only
        self.b1 = None if first.bias is None else first.bias.detach()
        self.upper = nn.Sequential(*list(model)[2:])  # the same modules (shared weights), above the first layer
        self.above = list(self.upper)[1:]  # the modules after the first activation
        self.activate = _ACTIVATION_INTO.get(type(self.upper[0]))
        self.lean = self.activate is not None and all(type(m) is nn.Linear or type(m) in _ACTIVATION_INTO
                                                      for m in self.above)  # else: the modules' own forward
        self.inplace = any(getattr(m, "inplace", False) for m in self.upper)  # e.g. nn.ReLU(inplace=True)
        self.samples = split.x.shape[0]
        with torch.inference_mode(), eval_mode(model):
            x = model[0](split.x)
            batches = [first(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]  # as predict runs it
            zt = torch.cat([z.T for z in batches], 1) if batches else x.new_empty(first.out_features, 0)
            # ^ copied before an in-place activation can change a batch
            correct = sum(int(correct_count(self.upper(z), y)) for z, y in zip(batches, split.y.split(batch_size)))
            self.dense_accuracy = correct / max(1, x.shape[0])
            # per block of samples: the first layer's input [d_in, C] (the sparse product reads its rows), its
            # pre-activations at the current level [d_out, C], and the labels
            self.blocks = [(xb.contiguous(), zb.contiguous(), yb) for xb, zb, yb in
                           zip(x.T.split(chunk, 1), zt.split(chunk, 1), split.y.split(chunk))]
            self.hidden = x.new_empty(first.out_features, min(chunk, x.shape[0]))  # the first activation, per block
            self.outputs: dict[int, torch.Tensor] = {}  # and each upper Linear's output, per block
        device = self.w1.device  # every index below lives beside the weights (the ranking is made on the CPU)
        self.row_pruned = torch.zeros(first.out_features, dtype=torch.long, device=device)
        self.storage = [storage(m, a).detach() for m, a in self.params[1:]]
        self.saved = [t.clone() for t in self.storage]
        if self.scope == "global":  # each layer's weights in the global pruning order, and their places in it
            order = self.order.to(device)
            offsets = list(itertools.accumulate(self.sizes, initial=0))
            layer = torch.bucketize(order, torch.tensor(offsets[1:-1], device=device), right=True)
            self.by_layer = [order[layer == i] - off for i, off in enumerate(offsets[:-1])]
            self.places = [(layer == i).nonzero()[:, 0] for i in range(len(self.sizes))]
        else:
            self.by_layer = [order.to(device) for order in self.order]
        self.level, self.counts = 0, [0] * len(self.sizes)

    def __enter__(self) -> "IncrementalMLP":
        return self

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for t, saved in zip(self.storage, self.saved):
                t.copy_(saved)

    def _counts(self, k: int) -> list[int]:
        """Weights of each layer pruned at level ``k`` (as :meth:`layer_counts`, without scanning the order)."""
        if self.scope == "global":
            return [int(torch.searchsorted(places, k)) for places in self.places]
        return self.layer_counts(k)

    def _move_to(self, k: int):
        """Bring the upper layers' weights from the current level to level ``k``, and return the first layer's part
        of the move as ``update(block)``, to be applied to every block of ``Z`` (None when the first layer does not
        change). :meth:`accuracy` applies it block by block; ``Z`` is at level ``k`` once every block has it."""
        if not 0 <= k <= self.n:
            raise ValueError(f"k={k} must be in [0, {self.n}]")
        if k == self.level:
            return None
        up, counts = k > self.level, self._counts(k)
        changed = [order[min(a, b):max(a, b)] for order, a, b in zip(self.by_layer, self.counts, counts)]
        for t, saved, flat in zip(self.storage, self.saved, changed[1:]):
            t.view(-1)[flat] = 0 if up else saved.view(-1)[flat]
        self.level, self.counts = k, counts
        if not changed[0].numel():
            return None
        d_in = self.w1.shape[1]
        delta = entries_csr(self.w1, changed[0])
        rows = delta.crow_indices().diff()
        self.row_pruned += rows if up else -rows
        dead = self.row_pruned == d_in  # every weight of the unit pruned: Z is exactly its bias, no residue
        dead = dead if bool(dead.any()) else None

        def update(block) -> None:
            xb, zb, _ = block
            zb.addmm_(delta, xb, alpha=-1 if up else 1)  # one fused kernel, in place
            if dead is not None:
                zb[dead] = 0 if self.b1 is None else self.b1[dead, None]

        return update

    @torch.inference_mode()
    def accuracy(self, k: int) -> float:
        """Accuracy at level ``k``, levels in any order. Block by block: the block's move of ``Z``, then the layers
        above, while the block is in cache. For plain Linear layers and prunekit's activations every layer writes
        into a buffer kept from level to level (no allocation per level, and no module is called, so the modules'
        train/eval flag plays no part); any other layer runs as its module does, in eval mode."""
        adapt_threads()
        update = self._move_to(k)
        correct = self.hidden.new_zeros((), dtype=torch.long)
        with eval_mode(self.model) if not self.lean else contextlib.nullcontext():
            for block in self.blocks:
                if update is not None:
                    update(block)
                correct += self._upper_correct(block)
        return float(correct) / max(1, self.samples)

    def _upper_correct(self, block) -> torch.Tensor:
        """Correct predictions of the layers above the first on one block of ``Z`` (at the current level)."""
        _, zb, yb = block
        if not self.lean:
            return correct_count(self.upper(zb.T.clone() if self.inplace else zb.T), yb)
        h = self.activate(zb, self.hidden[:, :zb.shape[1]]).T
        for i, m in enumerate(self.above):  # h W^T + b into a kept buffer, then activations in place
            if type(m) is nn.Linear:
                if i not in self.outputs:
                    self.outputs[i] = h.new_empty(self.hidden.shape[1], m.out_features)
                out = self.outputs[i][:h.shape[0]]
                h = torch.mm(h, m.weight.T, out=out) if m.bias is None else torch.addmm(m.bias, h, m.weight.T, out=out)
            else:
                h = _ACTIVATION_INTO[type(m)](h, h)
        return correct_count(h, yb)
