"""Source 002's networks of different sizes (Sec. 2.2 of "An Empirical Study of a Pruning Mechanism", ICLR 2021
submission, OpenReview doeyA2PBjdy), notebook 05.

- Sec. 2.2.1, **network size**: the 0.5x and 0.25x networks are the 1x network pruned at random at initialisation to
  that share of its weights, the kept weights rescaled to He's variance, trained with the mask held
  (:func:`size_config`); each is ablated by ratio of its own weights and by absolute number (:func:`size_comparison`,
  :func:`size_claims`).
- Sec. 2.2.2, **pruned networks**: the pretrained network with 25%, 50% or 75% of its conv weights pruned in one shot by
  global magnitude and retrained with the pretraining schedule (:func:`conv_pruned`), against a *small* network with as
  many weights trained from scratch for twice the epochs (:func:`small_config`); for the pretrained network only the
  weights above the pruning threshold are sampled into the ablated subsets (:func:`pruned_comparison`,
  :func:`pruned_table`, :func:`pruned_claims`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import claims as C
from .cache import Run, cached_result, data_digest
from .checks import fraction
from .config import TrainConfig
from .cycles import conv_parameters, kept_conv_weights, next_masks, same_size_config
from .data import Dataset
from .imbalance import utility_std
from .masks import Masks
from .mechanism import SOURCE, pretrain_config
from .models import prunable_parameters
from .retrain import retrain, retraining_lrs
from .train import evaluate
from .utility import flat_weights, random_ablation

__all__ = ["PRUNE_RATIOS", "size_config", "size_comparison", "size_claims", "conv_pruned", "small_config",
           "small_config_at", "pruned_comparison", "pruned_table", "pruned_claims"]

PRUNE_RATIOS = (0.25, 0.5, 0.75)  # Sec. 2.2.2's shares of the conv weights pruned in one shot


def size_config(profile: str, seed: int = 0, share: float = 1.0, network: str = "resnet20",
                dataset: str | None = None) -> TrainConfig:
    """The networks of notebook 05's size comparison: ``prunekit.mechanism.pretrain_config``'s network with He
    initialisation, pruned at initialisation to ``share`` of its weights (``ModelConfig.init_density``; 1.0 is the 1x
    network, for ResNet20 the pretrained network itself)."""
    return pretrain_config(profile, seed, network=network, dataset=dataset).replace(init="he", init_density=share)


def size_comparison(models: Mapping[float, nn.Module], x: torch.Tensor, y: torch.Tensor, ratios: Iterable[float],
                    n_subsets: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Source 002's comparison of network sizes (Sec. 2.2.1) for ``{share: model}``: one architecture pruned at
    initialisation to ``share`` of its weights (``ModelConfig(init_density=share)``; 1.0 = the 1x network) and trained.

    Each network is ablated by random subsets of its own weights (its non-zero prunable weights, ``P_s`` of them: every
    Linear/Conv weight but the layer into the logits, which is not pruned at initialisation either),
    two ways: ``by="ratio"`` ablates ``round(r * P_s)`` weights; ``by="number"`` ablates ``round(r * P_ref)``, with
    ``P_ref`` the weights of the network with the largest share (the source counts in units of the 1x network),
    wherever that is at most ``P_s``. ``level`` is ``r`` in both.
    Returns ``(ablations, summary)``: one row per subset (``share, by, level, own_weights, n_ablated, accuracy,
    utility``), and one row per (share, by, level): ``accuracy_mean/min/max``, ``utility_mean``, ``std`` (the source's
    imbalance), ``utility_max``, ``n``.
    """
    ratios = [fraction("ratios", r, low_open=True) for r in ratios]
    if not ratios or len(set(ratios)) != len(ratios):
        raise ValueError(f"ratios={ratios!r} must be distinct fractions in (0, 1], at least one")
    if len(models) < 1:
        raise ValueError("models must map at least one share to a model")
    own = {float(s): torch.nonzero(flat_weights(m)).flatten() for s, m in models.items()}
    reference = own[max(own)].numel()
    frames = []
    for share, model in models.items():
        pool = own[float(share)]
        for by, counts in (("ratio", [round(r * pool.numel()) for r in ratios]),
                           ("number", [round(r * reference) for r in ratios])):
            levels = [(r, c) for r, c in zip(ratios, counts) if c <= pool.numel()]
            if not levels:
                continue
            df = random_ablation(model, x, y, n_subsets=n_subsets, seed=seed, within=pool,
                                 counts=[c for _, c in levels])
            frames.append(df.assign(level=np.repeat([r for r, _ in levels], n_subsets), share=float(share), by=by,
                                    own_weights=pool.numel()))
    ablations = pd.concat(frames, ignore_index=True)[["share", "by", "level", "own_weights", "subset", "n_ablated",
                                                      "accuracy", "utility"]]
    summary = (ablations.groupby(["share", "by", "level"], sort=True)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_min=("accuracy", "min"),
                    accuracy_max=("accuracy", "max"), utility_mean=("utility", "mean"),
                    std=("utility", utility_std), utility_max=("utility", "max"),
                    n=("utility", "size"))
               .reset_index())
    return ablations, summary


def size_claims(summary: pd.DataFrame | None, *, similar_within: float = 0.05, number_factor: float = 2.0,
                max_level: float = 0.1) -> pd.DataFrame:
    """Source 002's two claims about network size (``prunekit.claims`` format), from :func:`size_comparison`'s summary.

    - networks use their weights in proportion to their size: for every smaller network, its mean accuracy differs
      from the largest one's by at most ``similar_within`` on average over the levels of its by-ratio curve, and by at
      least ``number_factor`` times that on average over the levels of its by-number curve (a level above its own
      number of weights has no by-number point);
    - smaller networks have subsets of higher maximum utility: by ratio at the level nearest ``max_level``, the
      maximum utility of the sample set is higher the smaller the network (strictly, from share to share).
    A summary that cannot decide a claim (fewer than two sizes, a missing column, no shared level, a NaN, more than
    one row per share, mode and level) gives "not measured here", with the reason.
    """
    names = ("Networks use their weights in proportion to their size (pruned at initialisation)",
             "Smaller networks have subsets of higher maximum utility")
    reports = ("similar ablation curves by ratio of each network's weights, different by absolute number",
               "the maximum utility in the sample set is higher in smaller networks")
    rules = (f"for each smaller network: mean |accuracy - largest's| <= {similar_within:.0%} over its by-ratio levels, "
             f"and >= {number_factor:g}x that over its by-number levels",
             f"utility_max by ratio at the level nearest {max_level:g} falls as the share grows")
    cols = ["share", "by", "level", "accuracy_mean", "utility_max"]
    why = None
    if summary is None or C.missing_columns(summary, cols):
        why = C.lacking(C.missing_columns(summary, cols) if summary is not None else cols, "size summary")
    elif summary["share"].nunique() < 2:
        why = "fewer than two network sizes"
    elif summary.duplicated(["share", "by", "level"]).any():
        why = "more than one row per share, mode and level (average seeds first)"
    if why is not None:
        return C.claims_frame([C.not_measured(SOURCE, n, r, why, rule) for n, r, rule in zip(names, reports, rules)])
    rows = []
    largest = summary["share"].max()
    acc = summary.pivot_table(index="level", columns=["by", "share"], values="accuracy_mean", dropna=False)
    gaps = {}
    for share in sorted(set(summary["share"]) - {largest}):
        gap = []
        for by in ("ratio", "number"):  # the largest network's curve is the same by ratio and by number
            if (by, share) not in acc.columns or ("ratio", largest) not in acc.columns:
                break
            t = acc[[(by, share), ("ratio", largest)]].dropna()
            if t.empty:
                break
            gap.append(float((t[(by, share)] - t[("ratio", largest)]).abs().mean()))
        if len(gap) == 2:
            gaps[share] = tuple(gap)
    if len(gaps) < summary["share"].nunique() - 1:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], "a smaller network has no level in common with the "
                                   "largest by ratio or by number", rules[0]))
    else:
        holds = all(r <= similar_within and n >= number_factor * r for r, n in gaps.values())
        measured = ("mean gap to the largest network's accuracy, by ratio / by number: "
                    + ", ".join(f"{100 * r:.1f} / {100 * n:.1f} points at share {s:g}" for s, (r, n) in gaps.items())
                    + ".")
        rows.append(C.claim(SOURCE, names[0], reports[0], measured, holds, rules[0]))
    by_ratio = summary[summary["by"] == "ratio"]
    if by_ratio.empty:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "no ablation by ratio", rules[1]))
        return C.claims_frame(rows)
    level = by_ratio["level"].iloc[int((by_ratio["level"] - max_level).abs().to_numpy().argmin())]
    at = by_ratio[np.isclose(by_ratio["level"], level)].set_index("share")["utility_max"].sort_index()
    if len(at) < 2 or at.isna().any():
        rows.append(C.not_measured(SOURCE, names[1], reports[1], f"fewer than two sizes with a maximum utility at "
                                   f"level {level:g}", rules[1]))
    else:
        falls = bool((np.diff(at.to_numpy()) < 0).all())
        measured = (f"maximum utility at ratio {level:g}: " + ", ".join(f"{u:.4f} at share {s:g}"
                                                                       for s, u in at.items()) + ".")
        rows.append(C.claim(SOURCE, names[1], reports[1], measured, falls, rules[1]))
    return C.claims_frame(rows)


# ------------------------------------------------------------------------------------ Sec. 2.2.2: pruned networks
def conv_pruned(run: Run, ratio: float, ds: Dataset | None = None, cache: bool = True,
                quiet: bool = True) -> tuple[Masks, nn.Module]:
    """Sec. 2.2.2's pruned network: ``run``'s network with ``round(ratio * n)`` of its ``n`` conv weights pruned in
    one shot, the smallest ``|w|`` over all conv layers together (``prunekit.cycles.next_masks``), then retrained with
    the pretraining schedule, every epoch of it from the pruned weights with the mask held (``prunekit.retrain``'s
    ``"lr_rewind"`` with ``t = T``) on ``ds`` (default: the run's data set). Returns ``(masks, retrained network)``.
    cache: keep the retrained weights in the result cache (kind ``"pruned"``, keyed by ``run.config.key()``, the
    plan and a digest of the training split): ``run`` must be ``train_or_load``'s."""
    ratio = fraction("ratio", ratio, low_open=True, high_open=True)
    cfg = run.config
    lrs = retraining_lrs(cfg, "lr_rewind", cfg.epochs)
    masks = next_masks(run.model, None, "weight", ratio)
    ds = ds or run.dataset()

    def compute():
        result = retrain(run.model, masks, ds, cfg, "lr_rewind", cfg.epochs, quiet=quiet)
        return dict(result.model.state_dict()), {}

    spec = {"pretrained": cfg.key(), "conv_magnitude": ratio, "lrs": lrs, "train_data": data_digest(ds.train),
            "version": 1}
    state, _ = cached_result("pruned", spec, compute) if cache else compute()
    net = copy.deepcopy(run.model)
    net.load_state_dict(state)
    return masks, net.eval()


def small_config(cfg: TrainConfig, model: nn.Module, masks: Masks) -> TrainConfig:
    """Sec. 2.2.2's small network for ``model`` pruned by ``masks``: ``cfg``'s network (He initialisation) pruned at
    random at initialisation to as many prunable weights as the pruned network uses, trained from scratch for twice
    the pretraining's epochs with its schedule's shape stretched over them (this project's reading of the source's
    "400 epochs")."""
    return same_size_config(cfg, model, kept_conv_weights(model, masks), 2 * cfg.epochs)


def small_config_at(cfg: TrainConfig, ratio: float) -> TrainConfig:
    """:func:`small_config` for :func:`conv_pruned` at ``ratio``, known before the pretrained network is: one-shot
    pruning removes ``round(ratio * n)`` of the ``n`` conv weights whichever they are (``cfg``'s network is built,
    untrained, only to count its weights)."""
    from .cache import build

    ratio = fraction("ratio", ratio, low_open=True, high_open=True)
    model = build(cfg)
    n = sum(getattr(m, a).numel() for m, a in conv_parameters(model))
    return same_size_config(cfg, model, n - round(ratio * n), 2 * cfg.epochs)


def _kept_flat(model: nn.Module, masks: Masks) -> torch.Tensor:
    """Flat indices (over ``model``'s prunable weights) of the weights ``masks`` keep; unmasked layers whole."""
    params = prunable_parameters(model)
    keeps = [masks[n].reshape(-1) if n in masks else torch.ones(getattr(m, a).numel(), dtype=torch.bool)
             for n, (m, a) in zip(Masks.names(model, params), params)]
    return torch.nonzero(torch.cat(keeps).cpu()).flatten()


def pruned_comparison(pretrained: nn.Module, pruned: Mapping[float, tuple[Masks, nn.Module]],
                      small: Mapping[float, nn.Module], x: torch.Tensor, y: torch.Tensor, levels: Iterable[float],
                      n_subsets: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random ablation of Sec. 2.2.2's networks for each pruning ratio ``r`` of ``pruned`` (``{r: (masks, pruned and
    retrained network)}``) and ``small`` (``{r: small network}``): ``"pretrained"`` ablates subsets of the weights
    above the pruning threshold (those ``masks`` keep), ``"pruned"`` and ``"small"`` subsets of their non-zero
    prunable weights; ``level`` is the fraction of that pool ablated. Returns ``(ablations, summary)``: one row per
    subset (``prune_ratio, network, pool_weights, level, subset, n_ablated, accuracy, utility``) and one row per
    (prune_ratio, network, level) with ``accuracy_mean/min/max, utility_mean, std`` (the source's imbalance),
    ``utility_max, n``."""
    levels = [fraction("levels", v, low_open=True) for v in levels]
    if not levels or len(set(levels)) != len(levels):
        raise ValueError(f"levels={levels!r} must be distinct fractions in (0, 1], at least one")
    if set(small) - set(pruned):
        raise ValueError(f"small has pruning ratios {sorted(set(small) - set(pruned))} that pruned lacks")
    frames = []
    for ratio, (masks, net) in pruned.items():
        nets = {"pretrained": (pretrained, _kept_flat(pretrained, masks)),
                "pruned": (net, torch.nonzero(flat_weights(net)).flatten().cpu())}
        if ratio in small:
            nets["small"] = (small[ratio], torch.nonzero(flat_weights(small[ratio])).flatten().cpu())
        for name, (model, pool) in nets.items():
            df = random_ablation(model, x, y, ratios=levels, n_subsets=n_subsets, seed=seed, within=pool)
            frames.append(df.rename(columns={"ratio": "level"}).assign(
                level=np.repeat(levels, n_subsets), prune_ratio=float(ratio), network=name, pool_weights=len(pool)))
    ablations = pd.concat(frames, ignore_index=True)[["prune_ratio", "network", "pool_weights", "level", "subset",
                                                      "n_ablated", "accuracy", "utility"]]
    summary = (ablations.groupby(["prune_ratio", "network", "level"], sort=True)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_min=("accuracy", "min"),
                    accuracy_max=("accuracy", "max"), utility_mean=("utility", "mean"),
                    std=("utility", utility_std), utility_max=("utility", "max"), n=("utility", "size"))
               .reset_index())
    return ablations, summary


def pruned_table(pretrained: nn.Module, pruned: Mapping[float, tuple[Masks, nn.Module]],
                 small: Mapping[float, nn.Module], ds: Dataset, loss: str = "cross_entropy") -> pd.DataFrame:
    """One row per network of Sec. 2.2.2: ``prune_ratio`` (NaN for the pretrained one), ``network``
    ("pretrained", "pruned": pruned and retrained, "small": from scratch), ``conv_weights`` in use, ``test_accuracy``
    and ``train_accuracy``."""
    total = sum(getattr(m, a).numel() for m, a in conv_parameters(pretrained))
    nets = [(np.nan, "pretrained", pretrained, total)]
    for ratio, (masks, net) in pruned.items():
        nets.append((float(ratio), "pruned", net, kept_conv_weights(pretrained, masks)))
        if ratio in small:
            used = sum(int(torch.count_nonzero(getattr(m, a))) for m, a in conv_parameters(small[ratio]))
            nets.append((float(ratio), "small", small[ratio], used))
    rows = []
    for ratio, name, net, used in nets:
        rows.append({"prune_ratio": ratio, "network": name, "conv_weights": used, "conv_density": used / total,
                     "test_accuracy": evaluate(net, ds.test, loss)[1],
                     "train_accuracy": evaluate(net, ds.train, loss)[1]})
    return pd.DataFrame(rows)


def pruned_claims(table: pd.DataFrame | None, summary: pd.DataFrame | None, *, level: float = 0.1) -> pd.DataFrame:
    """Sec. 2.2.2's two claims (``prunekit.claims`` format), from :func:`pruned_table` and :func:`pruned_comparison`'s
    summary, decided at every pruning ratio that has both a pruned and a small network:

    - a small network trained from scratch does not reach the pruned-and-retrained network's test accuracy (the
      premise the source starts from, after Frankle & Carbin 2018);
    - the small network uses its weights less evenly: the standard deviation of its utilities (the source's
      imbalance) at the level nearest ``level`` is above the pruned-and-retrained network's (the source's main
      hypothesis: the small network performs worse because it does not utilise all of its weights).
    A table that cannot decide (missing columns, no ratio with both networks, a NaN, a duplicate row) gives "not
    measured here", with the reason.
    """
    names = ("A small network trained from scratch does not reach the pruned-and-retrained network's accuracy",
             "A small network trained from scratch uses its weights less evenly than a pruned-and-retrained one")
    reports = ("a network with as many weights as the pruned one, trained from scratch, performs worse",
               "main hypothesis: the small network performs worse because it does not utilise all of its weights")
    rules = ("test accuracy of the small network < the pruned-and-retrained one's, at every pruning ratio",
             f"std of the utilities at the level nearest {level:g}: small > pruned-and-retrained, at every ratio")
    checks = ((table, "test_accuracy", None,
               "{r:.0%} of conv weights pruned: {p:.2%} pruned and retrained, {s:.2%} small", lambda p, s: s < p),
              (summary, "std", level, "{r:.0%} pruned: std {p:.3g} pruned and retrained, {s:.3g} small",
               lambda p, s: s > p))
    rows = []
    for i, (df, column, at, text, holds) in enumerate(checks):
        values, why = _by_ratio(df, column, at)
        if values is None:
            rows.append(C.not_measured(SOURCE, names[i], reports[i], why, rules[i]))
            continue
        measured = "; ".join(text.format(r=r, p=p, s=s) for r, (p, s) in values.items()) + "."
        rows.append(C.claim(SOURCE, names[i], reports[i], measured, all(holds(p, s) for p, s in values.values()),
                            rules[i]))
    return C.claims_frame(rows)


def _by_ratio(df: pd.DataFrame | None, column: str, level: float | None):
    """``({prune_ratio: (pruned value, small value)}, "")`` from ``df`` (at the level nearest ``level`` when given),
    or ``(None, why)`` when the table cannot give exactly one finite value of each at one ratio or more."""
    cols = ["prune_ratio", "network", column] + (["level"] if level is not None else [])
    if df is None or C.missing_columns(df, cols) or df.empty:
        return None, C.lacking(C.missing_columns(df, cols) if df is not None else cols,
                               "summary" if level is not None else "accuracy table")
    t = df[df["network"].isin(["pruned", "small"])]
    if level is not None and not np.isfinite(pd.to_numeric(t["level"], errors="coerce").to_numpy(dtype=float)).all():
        return None, "a level that is not a finite number"
    if level is not None and not t.empty:
        nearest = t["level"].iloc[int((t["level"] - level).abs().to_numpy().argmin())]
        t = t[np.isclose(t["level"], nearest)]
    if t.duplicated(["prune_ratio", "network"]).any():
        return None, "more than one row per pruning ratio and network"
    if not np.isfinite(pd.to_numeric(t[column], errors="coerce").to_numpy(dtype=float)).all():
        return None, f"a {column} that is not a finite number"
    wide = t.pivot(index="prune_ratio", columns="network", values=column).reindex(columns=["pruned", "small"])
    wide = wide.dropna()  # a ratio without both networks is left out
    if wide.empty:
        return None, "no pruning ratio with both a pruned-and-retrained and a small network"
    return {float(r): (float(p), float(s)) for r, (p, s) in wide.iterrows()}, ""
