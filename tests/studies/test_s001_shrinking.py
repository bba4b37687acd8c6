"""Source 001's study layer (prunekit.studies.s001_shrinking): the setups, the comparison with serial brute force,
and the claims, on tiny nets against independent computations."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from prunekit.measures import saliency as S
from prunekit.studies import s001_shrinking as SH

ACT = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def make_mlp(sizes, activation="sigmoid", seed=0):
    """Flatten, Linear, Act, ..., Linear (float64), built here independently of prunekit's models."""
    torch.manual_seed(seed)
    layers = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACT[activation]())
    return nn.Sequential(*layers).double()


def make_data(n, d, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 1, d, generator=g, dtype=torch.float64), torch.randint(0, k, (n,), generator=g)


def test_rank_agreement_and_curve_gap():
    model = make_mlp([4, 10, 3], "sigmoid", seed=21)
    x, y = make_data(80, 4, 3, seed=22)
    net = S.from_model(model, loss="sse")
    ranks = SH.rank_agreement(net, x, y, seed=0)
    assert list(ranks.estimator) == list(S.ESTIMATORS) and set(ranks.layer) == {"all"}  # one hidden layer
    r = ranks.set_index("estimator")
    assert r.loc["brute_force", "spearman"] == pytest.approx(1.0)
    assert r.loc["brute_force", "kendall"] == pytest.approx(1.0)
    oracle = S.saliencies(net, x, y, "brute_force").numpy()
    second = S.saliencies(net, x, y, "second_order").numpy()
    assert r.loc["second_order", "spearman"] == pytest.approx(stats.spearmanr(second, oracle).statistic)
    assert r.loc["second_order", "kendall"] == pytest.approx(stats.kendalltau(second, oracle).statistic)

    frames = [S.serial_prune(net, x, y, e, a).to_frame(setup="toy", seed=0)
              for a in S.ALGORITHMS for e in S.ESTIMATORS]
    table = pd.concat(frames, ignore_index=True)
    assert list(table.columns) == ["setup", "seed", "estimator", "algorithm", "units_removed", "fraction_removed",
                                   "error", "accuracy"]
    gap = SH.curve_gap(table, margin=0.05, mode="absolute")
    assert len(gap) == 2 * len(S.ESTIMATORS)
    g = gap.set_index(["estimator", "algorithm"])
    assert g.loc[("brute_force", "II"), "mean_error_gap"] == 0
    assert g.loc[("brute_force", "II"), "shortfall_vs_brute_force"] == 0
    assert (g.num_units == 10).all()
    bf = table[(table.estimator == "brute_force") & (table.algorithm == "II")].error.to_numpy()
    so = table[(table.estimator == "second_order") & (table.algorithm == "II")].error.to_numpy()
    assert g.loc[("second_order", "II"), "mean_error_gap"] == pytest.approx(np.mean(so - bf))
    assert g.loc[("brute_force", "II"), "removable"] == S.removable_units(bf, 0.05)
    assert g.loc[("second_order", "II"), "shortfall_vs_brute_force"] == (
        S.removable_units(bf, 0.05) - S.removable_units(so, 0.05))
    # every estimate, Algorithm I too, is compared with *serial* brute force (Algorithm II), the source's reference
    so1 = table[(table.estimator == "second_order") & (table.algorithm == "I")].error.to_numpy()
    assert g.loc[("second_order", "I"), "shortfall_vs_brute_force"] == (
        S.removable_units(bf, 0.05) - S.removable_units(so1, 0.05))
    assert g.loc[("second_order", "I"), "shortfall_fraction"] == g.loc[("second_order", "I"),
                                                                       "shortfall_vs_brute_force"] / 10


def test_rank_agreement_per_hidden_layer():
    """Two hidden layers: one row per estimator for all units and for each layer, each the scipy correlation of that
    slice of the scores (computed here) with the same slice of brute force's."""
    model = make_mlp([3, 6, 5, 2], "sigmoid", seed=31)
    x, y = make_data(60, 3, 2, seed=32)
    net = S.from_model(model, loss="sse")
    ranks = SH.rank_agreement(net, x, y, estimators=("second_order", "second_order_exact", "brute_force"))
    assert list(ranks.layer) == ["all", "1", "2"] * 3
    oracle = S.saliencies(net, x, y, "brute_force").numpy()
    exact = S.saliencies(net, x, y, "second_order_exact").numpy()
    r = ranks.set_index(["estimator", "layer"])["spearman"]
    assert r["second_order_exact", "1"] == pytest.approx(stats.spearmanr(exact[:6], oracle[:6]).statistic)
    assert r["second_order_exact", "2"] == pytest.approx(stats.spearmanr(exact[6:], oracle[6:]).statistic)
    assert r["brute_force", "2"] == pytest.approx(1.0)


def test_from_prunekit_mlp_and_setups():
    import prunekit.core.config as config
    setups = SH.SETUPS
    for p in SH.PRESETS.values():
        assert set(p.setups) <= set(setups) and set(p.course) <= set(p.setups)
    for s in setups.values():
        assert isinstance(s.config, config.TrainConfig) and s.group in SH.GROUPS
        assert s.config.model.activation == "sigmoid"
    # the source's setups as it states them: data, sizes, squared error over sigmoid outputs, its accuracies
    assert setups["mnist20_100"].config.data == config.DataConfig(name="mnist", subset=5000, resize=20,
                                                                   normalize=False)
    assert setups["mnist20_100"].accuracy == 0.998 and setups["mnist20_50_50"].accuracy == 1.0
    assert setups["mnist20_50_50"].config.model.hidden == (50, 50)
    assert setups["diamond_50_50"].config.model.hidden == (50, 50) and setups["diamond_50_50"].accuracy == 0.992
    assert setups["cosine_50_50"].config.model.hidden == (50, 50) and setups["cosine_10_10"].config.loss == "sse"
    assert [setups[f"mnist_ova{d}"].config.data.one_vs_all for d in (0, 1, 2)] == [0, 1, 2]
    source = [n for n, s in setups.items() if SH.GROUPS[s.group].kind == "source"]
    assert all(setups[n].config.loss == "sse" and setups[n].config.optimizer == "sgd" for n in source)
    # the Adam copies are the same networks on the same data, the optimizer (and its schedule) aside
    for name in ("diamond_50_50", "random_shape_50_50", "mnist20_50_50"):
        a, b = setups[name].config, setups[f"{name}_adam"].config
        assert a.data == b.data and a.model == b.model and b.optimizer == "adam"
        assert setups[f"{name}_adam"].group == ("adam_mnist" if name.startswith("mnist") else "adam")
    import prunekit.core.models as models
    cfg = setups["mnist20_50_50"].config
    model = models.build_model(cfg.model, (1, 20, 20), 10)
    net = S.from_model(model, loss="sse")
    assert net.widths == [50, 50] and net.activation == "sigmoid"
    x = torch.randn(3, 1, 20, 20)
    torch.testing.assert_close(S.to_model(net)(x.flatten(1).double()), model(x).detach().double(), rtol=1e-5,
                               atol=1e-5)


def _gaps(values, seeds=(0, 1, 2)):
    """curve_gap rows: ``values[setup][(estimator, algorithm)]`` is a removable fraction (one, or one per seed);
    brute force under Algorithm II is the reference each shortfall is measured against."""
    def at(v, i):
        return v[i] if isinstance(v, (list, tuple)) else v

    rows = []
    for setup, runs in values.items():
        for i, seed in enumerate(seeds):
            bf = at(runs[("brute_force", "II")], i)
            for (est, alg), v in runs.items():
                rows.append((setup, seed, est, alg, at(v, i), bf - at(v, i)))
    return pd.DataFrame(rows, columns=["setup", "seed", "estimator", "algorithm", "removable_fraction",
                                       "shortfall_fraction"])


def _runs(bf, second, first, exact=None):
    out = {("brute_force", "II"): bf, ("second_order", "II"): second, ("first_order", "II"): first}
    if exact is not None:
        out[("second_order_exact", "II")] = exact
    return out


SHAPES = "inside-a-shape tasks"
MNIST = "MNIST subset"


def _verdicts(table):
    return dict(zip(table["claim"], table["verdict"]))


def test_claims_001_are_decided_per_group_of_setups():
    from prunekit.report.claims import COLUMNS

    gaps = _gaps({
        "diamond_50_50": _runs([0.5, 0.55, 0.6], [0.48, 0.52, 0.57], 0.0),          # 2-3% short: close
        "random_shape_50_50": _runs(0.55, [0.5, 0.51, 0.52], [0.1, 0.0, 0.05]),      # 3-5% short: close
        "mnist20_100": _runs(0.6, 0.6, [0.4, 0.45, 0.5]),                           # one layer: not short at all
        "mnist20_50_50": _runs(0.5, [0.3, 0.32, 0.34], [0.2, 0.22, 0.21]),           # two layers: 16-20% short
        "diamond_50_50_adam": _runs(0.6, 0.0, 0.0, [0.55, 0.56, 0.57]),
    })
    t = SH.claims_table(gaps)
    assert list(t.columns) == COLUMNS and len(t) == 8  # three claims of each source group, two of the extension
    v = _verdicts(t)
    assert v[f"Brute force removes 40-70% of the neurons with little effect ({SHAPES})"] == "holds"
    assert v[f"The second-order estimate comes very close to brute force ({SHAPES})"] == "holds"
    assert v[f"The second-order estimate does better than the first-order one ({SHAPES})"] == "holds"
    # "beyond the first layer": decided on the two-hidden-layer setup, the one-layer one only printed
    far = f"The second-order estimate does not nearly as well as brute force beyond one hidden layer ({MNIST})"
    assert v[far] == "holds"
    row = t.set_index("claim").loc[far]
    assert "mnist20_50_50: +18%" in row["interval"] and "mnist20_100" not in row["interval"]
    assert v[f"The second-order estimate does consistently better than the first-order one ({MNIST})"] == "holds"
    ext = t[t.kind == "extension"]
    assert list(ext.claim.str.contains("Adam-trained")) == [True, True]
    assert list(ext.verdict) == ["does not hold", "holds"]  # the source's diagonal fails, the exact one does not
    assert (t.loc[t.kind == "source", "verdict"].isin(["holds"])).all()
    assert set(t.quote_where) >= {"abstract (the authors' words)"}
    assert all(w.endswith("(the authors' words)") for w in t.quote_where)
    assert "SGD-trained" in t.set_index("claim").loc[far, "setup"]
    # hand-worked: brute force removes (50+55)/2, (55+55)/2, (60+55)/2 = 52.5%, 55%, 57.5% of the shape nets' units:
    # mean 55%, sd 2.5%, 95% t interval 55 +- 4.303 * 2.5 / sqrt(3) = [48.8%, 61.2%]
    bf_row = t.set_index("claim").loc[f"Brute force removes 40-70% of the neurons with little effect ({SHAPES})"]
    assert "55% [95% CI 49% to 61%" in bf_row["interval"]


def test_claims_001_need_every_setup_or_a_majority():
    close = f"The second-order estimate comes very close to brute force ({SHAPES})"
    better = f"The second-order estimate does better than the first-order one ({SHAPES})"
    # one setup close, the other far: no majority either way
    mixed = _gaps({"diamond_50_50": _runs(0.5, [0.48, 0.49, 0.5], 0.0),
                   "random_shape_50_50": _runs(0.5, [0.0, 0.01, 0.02], 0.0)})
    assert _verdicts(SH.claims_table(mixed))[close] == "cannot decide here"
    far = _gaps({"diamond_50_50": _runs(0.5, [0.2, 0.21, 0.22], 0.0),
                 "random_shape_50_50": _runs(0.5, [0.0, 0.01, 0.02], 0.0)})
    assert _verdicts(SH.claims_table(far))[close] == "does not hold"
    # second order ties first order (both remove nothing) in one setup and beats it by 1 unit in the other: the
    # claim rests on one setup, which is not every setup, and the tie is no evidence against it
    tie = _gaps({"diamond_50_50": _runs(0.5, 0.0, 0.0), "random_shape_50_50": _runs(0.5, [0.01, 0.02, 0.01], 0.0)})
    row = SH.claims_table(tie).set_index("claim").loc[better]
    assert row["verdict"] == "cannot decide here" and "a tie" in row["measured"]


@pytest.mark.parametrize("rows, expected", [
    ([], ["not measured here"] * 9),
    ([("diamond_50_50", 0, "brute_force", "I", 0.5, 0.0)], ["not measured here"] * 3),      # no Algorithm II
    ([("diamond_50_50", 0, "brute_force", "II", 0.5, 0.0), ("diamond_50_50", 0, "first_order", "II", 0.1, 0.4)],
     ["cannot decide here", "not measured here", "not measured here"]),                  # one seed, one estimate
])
def test_claims_001_never_raise(rows, expected):
    cols = ["setup", "seed", "estimator", "algorithm", "removable_fraction", "shortfall_fraction"]
    gaps = pd.DataFrame(rows, columns=cols)
    t = SH.claims_table(gaps)
    assert list(t["verdict"]) == expected
    assert all(t.loc[t.verdict == "not measured here", "measured"].str.startswith("Not measured here: "))
    assert list(SH.claims_table(gaps.drop(columns="algorithm"))["verdict"]) == ["not measured here"] * 9


def test_why_table_and_setup_table_read_the_runs():
    gaps = _gaps({"diamond_50_50_adam": _runs(0.6, 0.0, 0.0, 0.55), "diamond_100": _runs(0.4, 0.4, 0.1, 0.4)},
                 seeds=(0, 1))
    ranks = pd.DataFrame([("diamond_50_50_adam", s, e, layer, rho) for s in (0, 1) for e, layer, rho in
                          [("second_order", "1", 0.2 + 0.1 * s), ("second_order", "2", 1.0),
                           ("second_order_exact", "1", 0.99), ("first_order", "1", 0.3)]]
                         + [("diamond_100", 0, "second_order", "all", 1.0)],
                         columns=["setup", "seed", "estimator", "layer", "spearman"])
    why = SH.why_table(gaps, ranks).set_index("setup")
    assert why.loc["diamond_50_50_adam", "spearman_first_layer_second_order"] == pytest.approx(0.25)
    assert why.loc["diamond_50_50_adam", "removable_second_order_exact"] == pytest.approx(0.55)
    assert why.loc["diamond_100", "spearman_first_layer_second_order"] == 1.0  # one layer: "all" is the first
    assert why.loc["diamond_100", "hidden"] == (100,) and why.loc["diamond_50_50_adam", "optimizer"] == "adam"
    acc = pd.DataFrame({"setup": ["diamond_50_50"] * 2, "seed": [0, 1], "train_accuracy": [0.98, 0.99],
                        "test_accuracy": [0.97, 0.98], "train_loss": [0.1, 0.1]})
    table = SH.setup_table(["diamond_50_50", "mnist20_100"], acc).set_index("setup")
    assert table.loc["diamond_50_50", "train_accuracy"] == pytest.approx(0.985)
    assert table.loc["diamond_50_50", "source_accuracy"] == 0.992 and np.isnan(table.loc["mnist20_100",
                                                                                         "train_accuracy"])


def test_training_course_follows_the_checkpoints(monkeypatch):
    """On a tiny two-layer net with two checkpoints: each row's rank agreement is scipy's on that checkpoint's
    network (computed here from Run.model_at), and the removable fractions are serial_prune's."""
    from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
    from prunekit.core.store import train_or_load

    cfg = TrainConfig(data=DataConfig("diamond"), model=ModelConfig("mlp", hidden=(4, 3), activation="sigmoid"),
                      loss="sse", optimizer="adam", lr=0.05, epochs=3, batch_size=256, checkpoints=(1, 3))
    monkeypatch.setitem(SH.SETUPS, "tiny", SH.Setup(cfg, "adam"))
    course = SH.training_course(["tiny"], device="cpu")
    assert list(course.epoch) == [1, 3] and (course.setup == "tiny").all()
    from prunekit.core.data import load_dataset

    ds = load_dataset(cfg.data)
    run = train_or_load(cfg)
    for row in course.itertuples():
        net = S.from_model(run.model_at(row.epoch), loss="sse")
        oracle = S.saliencies(net, ds.train.x, ds.train.y, "brute_force").numpy()
        exact = S.saliencies(net, ds.train.x, ds.train.y, "second_order_exact").numpy()
        assert row.spearman_first_layer_second_order_exact == pytest.approx(
            stats.spearmanr(exact[:4], oracle[:4]).statistic)
        bf = S.serial_prune(net, ds.train.x, ds.train.y, "brute_force", "II").removable(0.05, "range")
        assert row.removable_brute_force == pytest.approx(bf / 7)
    with pytest.raises(ValueError, match="checkpoints"):
        SH.training_course(["tiny"], epochs=(2,))


def test_each_group_has_the_sources_sentences():
    for group in ("shapes", "mnist", "arxiv"):
        quotes = SH.group_sentences(group)
        assert quotes and all(q.startswith("> ") and "\n>\n> — " in q for q in quotes)
    assert any("very close to the brute force method" in q for q in SH.group_sentences("shapes"))
