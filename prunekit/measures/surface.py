"""The loss / accuracy surface on the plane through three networks, and the linear path between two (source 002).

Source 002 draws the accuracy surface on the 2-D plane through three points of weight space: the pretrained network
``w0``, the pruned one ``w1`` and the pruned-and-retrained one ``w2``. Here:

- a point of weight space is the flat vector of *all* parameters (``torch.nn.utils.parameters_to_vector`` order);
  buffers are not part of it: batch-norm running statistics are recomputed at every point instead (below);
- the plane's orthonormal basis comes from Gram-Schmidt, in float64::

      u = (w1 - w0) / ||w1 - w0||,   r = (w2 - w0) - ((w2 - w0) . u) u,   v = r / ||r||

  and a point is ``w(alpha, beta) = w0 + alpha u + beta v``; the three networks sit at ``(0, 0)``,
  ``(||w1 - w0||, 0)`` and ``((w2 - w0) . u, ||r||)``. Colinear points (``||r||`` ~ 0) span no plane:
  ``ValueError``;
- the grid spans the three points' alpha and beta ranges widened by ``margin`` (default 0.2) of each extent on both
  sides, ``n x n`` points (default 21 x 21); loss and accuracy on each split at every grid point;
- for models with batch norm the running statistics are recomputed at every point on the train data
  (``torch.optim.swa_utils.update_bn``: a cumulative average over the batches); without it the statistics of one
  network would be used with the weights of another;
- nothing is copied per point: the point's weights are written in place into the one model (float64 combination,
  cast to float32) and evaluated with ``prunekit.core.train.evaluate``; the model's own weights and buffers are restored
  afterwards. At the three points' coordinates the values equal the networks' own metrics up to float32 rounding
  of the reconstructed weights (for batch-norm models: their metrics after the same recalibration).

The "same basin" test: the loss along the straight line ``w(t) = (1 - t) w_a + t w_b`` from the pretrained to the
retrained network, its **loss barrier** ``max_t L(w(t)) - (L(w_a) + L(w_b)) / 2`` (over the mean of the ends, as
Frankle et al. 2020, "Linear Mode Connectivity and the Lottery Ticket Hypothesis", arXiv:1912.05671, measure their
error barrier) and its height above the chord ``max_t [L(w(t)) - ((1 - t) L(w_a) + t L(w_b))]`` (the barrier of
Entezari et al. 2022, "The Role of Permutation Invariance in Linear Mode Connectivity of Neural Networks",
arXiv:2110.06296): about 0 means the line stays in one basin; a clearly positive value means a ridge separates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.checks import choice, count, distinct, number, sequence, text
from ..core.data import Split, as_split
from ..core.device import model_device
from ..core.prunable import checked_labels
from ..core.weights import refresh_all
from ..core.train import evaluate, state_restored
from .protocol import older_positional

__all__ = ["flatten", "state_vector", "write_vector_", "has_batchnorm", "recalibrate_bn", "Plane", "evaluate_point",
           "plane_surface", "check_anchors", "linear_path", "loss_barrier", "barrier_table"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


# ------------------------------------------------------------------------------------------------ weight vectors
def flatten(model: nn.Module) -> torch.Tensor:
    """All parameters as one float32 vector (``parameters_to_vector`` order), detached and copied."""
    return torch.nn.utils.parameters_to_vector([p.detach() for p in model.parameters()]).clone()


def state_vector(model: nn.Module, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The parameter vector of a (plain) state_dict, in ``model``'s parameter order (buffers ignored)."""
    try:
        return torch.cat([state[name].detach().reshape(-1).float() for name, _ in model.named_parameters()])
    except KeyError as err:
        raise ValueError(f"state_dict has no parameter {err.args[0]!r}; fold torch.nn.utils.prune "
                         "reparametrisations first (prunekit.core.initialisation.plain_state_dict)") from None


@torch.no_grad()
def write_vector_(model: nn.Module, vec: torch.Tensor) -> None:
    """Copy ``vec`` into the model's parameters in place (no new tensors, no model copy)."""
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    if vec.numel() != n:
        raise ValueError(f"vec has {vec.numel()} entries, the model has {n} parameters")
    offset = 0
    for p in params:
        p.copy_(vec[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    refresh_all(model)  # weights under torch.nn.utils.prune recomputed now (an attention reads out_proj.weight as is)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BN) for m in model.modules())


def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> None:
    """Recompute batch-norm running statistics on ``x`` (``torch.optim.swa_utils.update_bn``; no-op without BN)."""
    batch_size = count("batch_size", batch_size)
    if has_batchnorm(model):
        device = model_device(model)
        torch.optim.swa_utils.update_bn([x[i:i + batch_size].to(device) for i in range(0, x.shape[0], batch_size)],
                                        model)


# ----------------------------------------------------------------------------------------------------------- plane
@dataclass
class Plane:
    """The plane ``w0 + alpha u + beta v`` through three weight vectors (float64 basis from Gram-Schmidt)."""

    origin: torch.Tensor  # float64 [P], = the first point
    u: torch.Tensor  # float64 [P], unit
    v: torch.Tensor  # float64 [P], unit, orthogonal to u
    names: tuple[str, str, str]
    coords: dict[str, tuple[float, float]]  # the three points' (alpha, beta)

    @classmethod
    def through(cls, w0: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                names: Sequence[str] = ("pretrained", "pruned", "retrained"), rtol: float = 1e-6) -> "Plane":
        """The plane through three points; ``ValueError`` if they are (nearly) colinear or coincide.

        ``rtol``: the points are colinear when the part of ``w2 - w0`` orthogonal to ``w1 - w0`` is shorter than
        ``rtol`` times the longer of the two differences.
        """
        names = distinct("names", sequence("names", names, item=text))
        if len(names) != 3:
            raise ValueError(f"names={names!r} must name the three points")
        rtol = number("rtol", rtol, low=0.0, high=1.0, low_open=True, high_open=True)
        if not (w0.numel() == w1.numel() == w2.numel()):
            raise ValueError(f"the points differ in size: {w0.numel()}, {w1.numel()}, {w2.numel()}")
        o = w0.detach().reshape(-1).double()
        d1 = w1.detach().reshape(-1).double() - o
        d2 = w2.detach().reshape(-1).double() - o
        n1, n2 = float(d1.norm()), float(d2.norm())
        if n1 == 0 or n2 == 0:
            raise ValueError(f"degenerate plane: {names[1] if n1 == 0 else names[2]!r} coincides with "
                             f"{names[0]!r}; three distinct, non-colinear points are needed")
        u = d1 / n1
        r = d2 - (d2 @ u) * u
        r = r - (r @ u) * u  # second Gram-Schmidt pass: orthogonal to float64 precision
        nr = float(r.norm())
        if nr <= rtol * max(n1, n2):
            raise ValueError(f"degenerate plane: the points {names!r} are colinear (the component of "
                             f"{names[2]!r} orthogonal to the line {names[0]!r}-{names[1]!r} has norm {nr:.3g}, "
                             f"<= {rtol} x {max(n1, n2):.3g}); no 2-D plane passes through them")
        v = r / nr
        coords = {names[0]: (0.0, 0.0), names[1]: (float(d1 @ u), float(d1 @ v)),
                  names[2]: (float(d2 @ u), float(d2 @ v))}
        return cls(o, u, v, tuple(names), coords)

    def point(self, alpha: float, beta: float) -> torch.Tensor:
        """The float32 weight vector at ``(alpha, beta)`` (finite numbers)."""
        alpha, beta = number("alpha", alpha), number("beta", beta)
        w = self.origin.clone()
        w.add_(self.u, alpha=float(alpha)).add_(self.v, alpha=float(beta))
        return w.float()

    def project(self, vec: torch.Tensor) -> tuple[float, float, float]:
        """``(alpha, beta, distance)``: the coordinates of ``vec``'s orthogonal projection and its distance to the plane."""
        d = vec.detach().reshape(-1).to(self.origin) - self.origin
        a, b = float(d @ self.u), float(d @ self.v)
        return a, b, float((d - a * self.u - b * self.v).norm())

    def grid(self, n: int = 21, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
        """Grid axes ``(alphas, betas)``: the points' ranges widened by ``margin`` x their extent on each side."""
        number("n", n, low=2, integer=True)
        number("margin", margin, low=0.0)
        axes = []
        for k in range(2):
            vals = [c[k] for c in self.coords.values()]
            lo, hi = min(vals), max(vals)
            ext = hi - lo
            axes.append(np.linspace(lo - margin * ext, hi + margin * ext, n))
        return axes[0], axes[1]


# ------------------------------------------------------------------------------------------------------ evaluation
def _splits(data, model: nn.Module | None = None, loss: str = "cross_entropy") -> dict[str, Split]:
    """``{name: Split}`` from ``data``: a dict (or a list of ``(name, data)`` pairs) of named data sets, each in any
    form of ``prunekit.core.data.as_split``, or one data set, which is named "test"; with ``model``, class labels
    checked against its logits and converted (``prunekit.core.prunable.checked_labels``; float targets only for
    ``loss="sse"``)."""
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) for p in data):
        data = dict(data)  # [(name, data), ...]
    if not isinstance(data, Mapping):
        splits = {"test": as_split(data, name="data")}
    elif not data:
        raise ValueError("data is empty: give one data set or named ones, e.g. {'train': ds.train, 'test': ds.test}")
    else:
        splits = {name: as_split(part, name=f"data[{name!r}]") for name, part in data.items()}
    if model is None:
        return splits
    return {name: s if loss != "cross_entropy" and s.y.is_floating_point() else
            Split(s.x, checked_labels(model, s.x, s.y, name=f"data[{name!r}]")) for name, s in splits.items()}


@older_positional(older_order=("vec", "data", "loss", "batch_size", "bn_x"), renamed={"splits": "data"},
                  older_when=lambda args: isinstance(args[1], torch.Tensor) and args[1].dim() == 1)
def evaluate_point(model: nn.Module, data, *, vec: torch.Tensor, loss: str = "cross_entropy",
                   batch_size: int = 4096, bn_x: torch.Tensor | None = None) -> dict[str, tuple[float, float]]:
    """Write the weight vector ``vec`` into ``model`` (in place), recalibrate BN on ``bn_x`` if given, and return
    ``{split: (loss, accuracy)}`` on ``data`` (one data set, named "test", or ``{name: data}``). The model keeps the
    written weights (callers restore them). The older call ``evaluate_point(model, vec, splits)`` works for one
    release, with a ``DeprecationWarning``."""
    _check_evaluation(loss, batch_size)
    write_vector_(model, vec)
    if bn_x is not None:
        recalibrate_bn(model, bn_x)
    return {name: evaluate(model, s, loss, batch_size) for name, s in _splits(data, model, loss).items()}


def _check_evaluation(loss, batch_size) -> None:
    """The loss and batch size of every evaluation on the surface, checked before any."""
    choice("loss", loss, ("cross_entropy", "sse"))
    count("batch_size", batch_size)


def _bn_x(model, splits, bn_data):
    if not has_batchnorm(model):
        return None
    if bn_data is not None:
        return bn_data
    if "train" not in splits:
        raise ValueError("the model has batch norm: give bn_data (train inputs) or a 'train' split to recompute "
                         "its statistics at each point")
    return splits["train"].x


@older_positional(older_order=("plane", "data", "n", "margin", "loss", "batch_size", "bn_data"),
                  renamed={"splits": "data"}, older_when=lambda args: isinstance(args[1], Plane))
def plane_surface(model: nn.Module, data, *, plane: Plane, n: int = 21, margin: float = 0.2,
                  loss: str = "cross_entropy", batch_size: int = 4096,
                  bn_data: torch.Tensor | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loss and accuracy on every data set of ``data`` (one, named "test", or ``{name: data}``) at every point of an
    ``n x n`` grid of ``plane``, and at its three points.

    ``model`` is any model with the right architecture (its weights are overwritten during the call and restored at
    the end). Returns ``(grid, anchors)``: ``grid`` with columns ``i, j, alpha, beta, split, loss, accuracy``;
    ``anchors`` with ``point, alpha, beta, split, loss, accuracy`` (the three points, through the same
    reconstruction). BN models: statistics recomputed at each point on ``bn_data`` (default: the train split). The
    older call ``plane_surface(model, plane, splits)`` works for one release, with a ``DeprecationWarning``.
    """
    _check_evaluation(loss, batch_size)
    alphas, betas = plane.grid(n, margin)  # checks n and margin before the labels' forward pass
    splits = _splits(data, model, loss)
    rows, anchor_rows = [], []
    with state_restored(model):
        bn_x = _bn_x(model, splits, bn_data)
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                res = evaluate_point(model, splits, vec=plane.point(a, b), loss=loss, batch_size=batch_size,
                                     bn_x=bn_x)
                rows += [{"i": i, "j": j, "alpha": float(a), "beta": float(b), "split": s, "loss": lo,
                          "accuracy": acc} for s, (lo, acc) in res.items()]
        for name, (a, b) in plane.coords.items():
            res = evaluate_point(model, splits, vec=plane.point(a, b), loss=loss, batch_size=batch_size, bn_x=bn_x)
            anchor_rows += [{"point": name, "alpha": a, "beta": b, "split": s, "loss": lo, "accuracy": acc}
                            for s, (lo, acc) in res.items()]
    return pd.DataFrame(rows), pd.DataFrame(anchor_rows)


def check_anchors(anchors: pd.DataFrame, networks: Mapping[str, nn.Module], data, loss: str = "cross_entropy",
                  rtol: float = 1e-5, batch_size: int = 4096) -> int:
    """Check that the plane reproduces its networks: each anchor row of :func:`plane_surface` (``point``, ``split``,
    ``loss``, ``accuracy``) must equal ``networks[point]``'s own loss (within ``rtol``, relative, at least 1 absolute
    times ``rtol``) and accuracy on that split. Returns the number of checks; raises ``RuntimeError`` naming the
    first mismatch (the plane's view of the weights is then not the networks', and its surface would be wrong).
    Models with batch norm are compared as they are: give them after the same recalibration."""
    _check_evaluation(loss, batch_size)
    number("rtol", rtol, low=0.0, high=1.0, low_open=True, high_open=True)
    splits = _splits(data, next(iter(networks.values()), None), loss)
    missing = sorted(set(anchors["point"]) - set(networks))
    if missing:
        raise ValueError(f"networks lacks the anchor point(s) {missing}; give a model for each of "
                         f"{sorted(set(anchors['point']))}")
    for row in anchors.itertuples(index=False):
        own_loss, own_acc = evaluate(networks[row.point], splits[row.split], loss, batch_size)
        if abs(own_loss - row.loss) > rtol * max(1.0, abs(own_loss)) or own_acc != row.accuracy:
            raise RuntimeError(f"the plane's point {row.point!r} does not reproduce the network on the {row.split} "
                               f"split: loss {row.loss:.6g} / accuracy {row.accuracy:.6g} on the plane, "
                               f"{own_loss:.6g} / {own_acc:.6g} from the network itself")
    return len(anchors)


@older_positional(older_order=("w_a", "w_b", "data", "n", "loss", "batch_size", "bn_data"),
                  renamed={"splits": "data"}, older_when=lambda args: isinstance(args[1], torch.Tensor)
                  and args[1].dim() == 1 and len(args) >= 3 and isinstance(args[2], torch.Tensor))
def linear_path(model: nn.Module, data, *, w_a: torch.Tensor, w_b: torch.Tensor, n: int = 21,
                loss: str = "cross_entropy", batch_size: int = 4096,
                bn_data: torch.Tensor | None = None) -> pd.DataFrame:
    """Loss and accuracy on every data set of ``data`` (one, named "test", or ``{name: data}``) along
    ``w(t) = (1 - t) w_a + t w_b``, ``t`` in ``linspace(0, 1, n)`` (ends exact).

    Columns: ``t, split, loss, accuracy``. The model's own weights are restored at the end. The older call
    ``linear_path(model, w_a, w_b, splits)`` works for one release, with a ``DeprecationWarning``.
    """
    number("n", n, low=2, integer=True)
    _check_evaluation(loss, batch_size)
    if w_a.numel() != w_b.numel():
        raise ValueError(f"w_a and w_b differ in size: {w_a.numel()} vs {w_b.numel()}")
    splits = _splits(data, model, loss)
    a64, b64 = w_a.detach().reshape(-1).double(), w_b.detach().reshape(-1).double()
    rows = []
    with state_restored(model):
        bn_x = _bn_x(model, splits, bn_data)
        for t in np.linspace(0.0, 1.0, n):
            vec = ((1.0 - t) * a64 + t * b64).float()
            res = evaluate_point(model, splits, vec=vec, loss=loss, batch_size=batch_size, bn_x=bn_x)
            rows += [{"t": float(t), "split": s, "loss": lo, "accuracy": acc} for s, (lo, acc) in res.items()]
    return pd.DataFrame(rows)


def loss_barrier(path: pd.DataFrame, split: str = "test") -> float:
    """``max_t L(t) - (L(0) + L(1)) / 2`` along a ``linear_path`` result, on one split: the rise over the mean of the
    ends (Frankle et al. 2020 measure their error barrier so)."""
    text("split", split)
    p = path[path["split"] == split].sort_values("t")
    if p.empty:
        raise ValueError(f"split={split!r} is not in the path; have {sorted(path['split'].unique())}")
    ends = 0.5 * (p["loss"].iloc[0] + p["loss"].iloc[-1])
    return float(p["loss"].max() - ends)


def barrier_table(path: pd.DataFrame) -> pd.DataFrame:
    """Per split of a ``linear_path`` result:

    - ``loss_barrier``: ``max_t L(t) - (L(0) + L(1)) / 2`` (a monotone path from a low to a
      high end gives half the difference of the ends);
    - ``loss_barrier_linear``: ``max_t [L(t) - ((1 - t) L(0) + t L(1))]``, the height above the chord between the ends
      (Entezari et al. 2022's barrier): 0 for a path that never rises above the straight line between its ends;
    - ``accuracy_dip``: ``(acc(0) + acc(1)) / 2 - min_t acc(t)``; and the ends, the maximum and where it is.
    """
    rows = []
    for split, p in path.groupby("split", sort=False):
        p = p.sort_values("t")
        acc_ends = 0.5 * (p["accuracy"].iloc[0] + p["accuracy"].iloc[-1])
        t, loss = p["t"].to_numpy(), p["loss"].to_numpy()
        chord = (1 - t) * loss[0] + t * loss[-1]
        rows.append({"split": split, "loss_barrier": loss_barrier(path, split),
                     "loss_barrier_linear": float((loss - chord).max()),
                     "accuracy_dip": float(acc_ends - p["accuracy"].min()),
                     "loss_start": float(p["loss"].iloc[0]), "loss_end": float(p["loss"].iloc[-1]),
                     "loss_max": float(p["loss"].max()), "t_max": float(p["t"].iloc[int(np.argmax(p["loss"]))])})
    return pd.DataFrame(rows)
