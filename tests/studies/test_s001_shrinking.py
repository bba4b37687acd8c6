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


def _curve(units, knee=None, error=None):
    """One serial-pruning error curve over ``units`` hidden units: flat at 0.01 for the first ``knee`` removals, then a
    jump to 0.5 rising to 1.0 with every unit gone (removable: exactly ``knee`` at every margin up to 10%); or the
    given ``error`` values."""
    if error is not None:
        return list(error)
    return [0.01 if u <= knee else 0.5 + 0.5 * (u - knee) / (units - knee) for u in range(units + 1)]


def _curves(values, seeds=(0, 1, 2), units=100):
    """A curves table (notebook 06's): ``values[setup][(estimator, algorithm)]`` is a knee (units removable), one or
    one per seed, or an explicit error curve (a list of ``units + 1`` errors)."""
    def at(v, i):
        return v[i] if isinstance(v, tuple) else v

    rows = []
    for setup, runs in values.items():
        for i, seed in enumerate(seeds):
            for (est, alg), v in runs.items():
                v = at(v, i)
                errors = _curve(units, error=v) if isinstance(v, list) else _curve(units, knee=v)
                n = len(errors) - 1
                rows += [(setup, seed, est, alg, u, u / n, e) for u, e in enumerate(errors)]
    return pd.DataFrame(rows, columns=["setup", "seed", "estimator", "algorithm", "units_removed",
                                       "fraction_removed", "error"])


def _gaps(values, seeds=(0, 1, 2)):
    """curve_gap rows: ``values[setup][(estimator, algorithm)]`` is a removable fraction (one, or one per seed)."""
    rows = [(setup, seed, est, alg, v[i] if isinstance(v, tuple) else v)
            for setup, runs in values.items() for i, seed in enumerate(seeds) for (est, alg), v in runs.items()]
    return pd.DataFrame(rows, columns=["setup", "seed", "estimator", "algorithm", "removable_fraction"])


def _runs(bf, second, first, exact=None):
    out = {("brute_force", "II"): bf, ("second_order", "II"): second, ("first_order", "II"): first}
    if exact is not None:
        out[("second_order_exact", "II")] = exact
    return out


SHAPES = "inside-a-shape tasks"
MNIST = "MNIST subset"
AT_LEAST = f"Brute force removes at least 40% of the neurons with little effect ({SHAPES})"
CLOSE = f"The second-order estimate comes very close to brute force ({SHAPES})"
BETTER = f"The second-order estimate does better than the first-order one ({SHAPES})"
SHARE = "Brute force removes at least the share of the neurons the source reports ({})"
FAR_DEEP = f"The second-order estimate does not do nearly as well as brute force beyond one hidden layer ({MNIST})"


def _verdicts(table):
    return dict(zip(table["claim"], table["verdict"]))


def test_claims_001_are_decided_setup_by_setup_within_each_group():
    from prunekit.report.claims import COLUMNS

    curves = _curves({
        "diamond_50_50": _runs((50, 55, 60), (48, 52, 57), 0),           # 2-3 units short of 100: close
        "random_shape_50_50": _runs(55, (50, 51, 52), (10, 0, 5)),        # 3-5 short: close
        "mnist20_100": _runs((60, 62, 64), (60, 62, 64), (40, 45, 50)),   # one layer: not short at all
        "mnist20_50_50": _runs((40, 41, 42), (20, 22, 24), (10, 12, 11)),  # two layers: 18-20 short
        "diamond_50_50_adam": _runs(60, 0, 0, (55, 56, 57)),
    })
    t = SH.claims_table(curves)
    assert list(t.columns) == COLUMNS and len(t) == 8  # three claims of each source group, two of the extension
    v = _verdicts(t)
    assert v[AT_LEAST] == v[CLOSE] == v[BETTER] == "holds"
    assert v[SHARE.format(MNIST)] == "holds"
    # "beyond the first layer": decided on the two-hidden-layer setup, the one-layer one only printed
    assert v[FAR_DEEP] == "holds"
    row = t.set_index("claim").loc[FAR_DEEP]
    assert "mnist20_50_50: +19%" in row["interval"] and "mnist20_100" not in row["interval"]
    assert v[f"The second-order estimate does better than the first-order one ({MNIST})"] == "holds"
    ext = t[t.kind == "extension"]
    assert list(ext.claim.str.contains("Adam-trained")) == [True, True]
    assert list(ext.verdict) == ["does not hold", "holds"]  # the source's diagonal 60 units short, the exact one 4
    assert (t.loc[t.kind == "source", "verdict"] == "holds").all()
    assert "SGD-trained" in row["setup"]
    # hand-worked: brute force removes 50, 55, 60 of diamond's 100 units: mean 55%, sd 5%, 95% t interval
    # 55 +- 4.303 * 5 / sqrt(3) = [42.6%, 67.4%]; random_shape's 55, 55, 55 take a spread of one unit (1%):
    # 55 +- 4.303 * 1 / sqrt(3) = [52.52%, 57.48%]
    bf_row = t.set_index("claim").loc[AT_LEAST]
    assert "diamond_50_50: 55% [95% CI 43% to 67%" in bf_row["interval"]
    assert "random_shape_50_50: 55% [95% CI 53% to 57%" in bf_row["interval"]


def test_claims_001_need_every_setup_or_a_majority_and_say_which_disagree():
    # one setup close, the other far: the setups disagree
    mixed = SH.claims_table(_curves({"diamond_50_50": _runs(50, (48, 49, 50), 0),
                                     "random_shape_50_50": _runs(50, (0, 1, 2), 0)})).set_index("claim")
    assert mixed.loc[CLOSE, "verdict"] == "cannot decide here"
    assert "the setups disagree: diamond_50_50 on the claim's side, random_shape_50_50 on the other" in \
        mixed.loc[CLOSE, "measured"]
    far = _curves({"diamond_50_50": _runs(50, (20, 21, 22), 0), "random_shape_50_50": _runs(50, (0, 1, 2), 0)})
    assert _verdicts(SH.claims_table(far))[CLOSE] == "does not hold"
    # one setup far, the other straddling the threshold (shortfalls 0, 10 and 20 units): one of two against is not a
    # majority, and the straddling one is named
    half = SH.claims_table(_curves({"diamond_50_50": _runs(50, (20, 21, 22), 0),
                                    "random_shape_50_50": _runs(50, (50, 40, 30), 0)})).set_index("claim")
    assert half.loc[CLOSE, "verdict"] == "cannot decide here"
    assert "the interval of random_shape_50_50 straddles the rule's threshold (diamond_50_50 on the other side)" in \
        half.loc[CLOSE, "measured"]


def test_a_verdict_on_removable_units_must_not_depend_on_the_margin():
    """Brute force's error rises by 3% of its range after 20 removals and jumps after 60: 20 units are removable at
    a margin of 2.5% (against "at least 40%"), 60 at 5% and 10% (for it): the claim cannot be decided."""
    step = [0.01 if u <= 20 else 0.04 if u <= 60 else 0.5 + 0.5 * (u - 60) / 40 for u in range(101)]
    t = SH.claims_table(_curves({"diamond_50_50": _runs(step, 60, 0), "random_shape_50_50": _runs(step, 60, 0)}))
    row = t.set_index("claim").loc[AT_LEAST]
    assert row["verdict"] == "cannot decide here"
    assert "the verdict depends on the margin (does not hold at 2.5%, holds at 5.0%, holds at 10.0%)" in \
        row["measured"]
    # read at 5%, 10% and 20% (margin=0.1: half and twice the margin given), 60 units at each: it holds
    assert SH.claims_table(_curves({"diamond_50_50": _runs(step, 60, 0)}), margin=0.1).set_index(
        "claim").loc[AT_LEAST, "verdict"] == "holds"


def test_better_is_read_on_the_error_curves_beyond_the_first_fifth_when_deep():
    """Second order is worse on the first removal and better after it (hand-worked over 5 units): the mean error
    difference over removals 1-5 is (0.45 - 0.05 - 0.05 - 0.05 + 0) / 5 = +0.06 of a range of 0.9 (one hidden
    layer: against), over removals 2-5 it is -0.0375 / 0.9 = -4.2% (two hidden layers, from 20%: for)."""
    first = [0.1, 0.15, 0.5, 0.7, 0.9, 1.0]
    second = [0.1, 0.6, 0.45, 0.65, 0.85, 1.0]
    curves = _curves({"mnist20_100": _runs(first, second, first), "mnist20_50_50": _runs(first, second, first)},
                     units=5)
    t = SH.claims_table(curves).set_index("claim")
    row = t.loc[f"The second-order estimate does better than the first-order one ({MNIST})"]
    assert "mnist20_100 +6.7%" in row["measured"] and "mnist20_50_50 -4.2% (from 20% of the units" in row["measured"]
    assert row["verdict"] == "cannot decide here" and "the setups disagree" in row["measured"]
    deep = SH.claims_table(curves[curves.setup == "mnist20_50_50"]).set_index("claim")
    assert deep.loc[f"The second-order estimate does better than the first-order one ({MNIST})", "verdict"] == "holds"


def test_runs_left_out_by_the_quality_gate_and_substitute_setups():
    accuracy = pd.DataFrame({"setup": ["cosine_10_10", "cosine_10_10", "cosine_50_50", "diamond_50_50"],
                             "seed": [0, 1, 0, 0], "train_loss": [5e-4, 0.041, float("nan"), 0.3]})
    gate = SH.quality_gate(accuracy)
    assert list(zip(gate.setup, gate.seed)) == [("cosine_10_10", 1), ("cosine_50_50", 0)]  # NaN does not pass
    assert "0.041 above 0.001" in gate.why.iloc[0] and SH.quality_gate(accuracy.iloc[:0]).empty
    curves = _curves({"cosine_10_10": _runs(10, 9, 0), "cosine_50_50": _runs(90, 10, 0)}, units=20)
    t = SH.claims_table(curves, excluded=gate)
    assert t.measured.str.contains(r"Left out: cosine_10_10 seed 1 \(training error 0.041").all()
    ova = SH.claims_table(_curves({"mnist_ova0": _runs(70, 0, 0), "mnist_ova1": _runs(90, 0, 0),
                                   "mnist_ova2": _runs(90, 0, 0)}))
    assert list(ova.verdict) == ["holds here (substitute setup)"] * 2 and (ova.kind == "source").all()
    assert ova.setup.str.contains("sigmoid outputs with squared error").all()
    assert "mnist_ova2 90% (no share stated by the source)" in ova.measured.iloc[0]


@pytest.mark.parametrize("values, expected", [
    ({}, ["not measured here"] * 6),
    ({"diamond_50_50": {("brute_force", "I"): 50}}, ["not measured here"] * 3),          # no Algorithm II
    ({"diamond_50_50": {("brute_force", "II"): 50, ("first_order", "II"): 10}},         # one seed: no interval;
     ["cannot decide here", "not measured here", "not measured here"]),                 # no second order
])
def test_claims_001_never_raise(values, expected):
    curves = _curves(values, seeds=(0,)) if values else _curves({})
    t = SH.claims_table(curves)
    assert list(t["verdict"]) == expected
    assert all(t.loc[t.verdict == "not measured here", "measured"].str.startswith("Not measured here: "))
    assert all(t.loc[t.verdict == "cannot decide here", "measured"].str.contains("a single seed gives no interval"))
    assert list(SH.claims_table(curves.drop(columns="algorithm"))["verdict"]) == ["not measured here"] * 6


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
    for group in ("shapes", "mnist", "cosine", "ova"):
        quotes = SH.group_sentences(group)
        assert quotes and all(q.startswith("> ") and "\n>\n> — " in q for q in quotes)
    assert any("very close to the brute force method" in q for q in SH.group_sentences("shapes"))
