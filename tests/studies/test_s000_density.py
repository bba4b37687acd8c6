"""Tests of prunekit.studies.s000_density: slope fit with CI, density trend, paired factor effects, claim sentences."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prunekit.studies.s000_density import claims, density_trend, factor_effect, fit_core_scaling, split_untrained, width_grid


def _table(slope, noise=0.05, seed=0, optimizers=("adam", "sgd"), inits=("he_normal",)):
    rng = np.random.default_rng(seed)
    rows = []
    for opt in optimizers:
        for init in inits:
            for w in (0.1, 0.25, 0.5, 1, 2, 3, 5):
                for s in range(3):
                    params = int(50000 * w)
                    core = 10 ** (0.5 + slope * np.log10(params) + rng.normal(0, noise))
                    core = core * (0.7 if opt == "sgd" else 1.0)
                    rows.append(dict(dataset="mnist", arch="lenet300", width_mult=w, optimizer=opt, init=init,
                                     seed=s, params=params, core_params=core, density=core / params,
                                     dense_accuracy=0.95))
    return pd.DataFrame(rows)


def test_fit_core_scaling_matches_scipy_and_recovers_slope():
    df = _table(0.9)
    fits = fit_core_scaling(df)
    assert len(fits) == 2 and (fits["n"] == 21).all()
    g = df[df.optimizer == "adam"]
    x, y = np.log10(g["params"]), np.log10(g["core_params"])
    ref = stats.linregress(x, y)
    t = stats.t.ppf(0.975, len(g) - 2)
    r = fits[fits.optimizer == "adam"].iloc[0]
    assert r["slope"] == pytest.approx(ref.slope) and r["intercept"] == pytest.approx(ref.intercept)
    assert r["ci_low"] == pytest.approx(ref.slope - t * ref.stderr)
    assert r["ci_high"] == pytest.approx(ref.slope + t * ref.stderr)
    assert r["ci_low"] < 0.9 < r["ci_high"] and r["p_zero"] < 1e-10 and r["p_one"] < 0.05
    assert r["params_fold"] == pytest.approx(50)
    # a constant core: slope ~ 0, the null hypothesis is not rejected
    flat = fit_core_scaling(_table(0.0)).iloc[0]
    assert abs(flat["slope"]) < 0.1 and flat["p_zero"] > 0.01


def test_density_trend_and_factor_effect():
    df = _table(1.0, noise=0.0)
    tr = density_trend(df)
    assert tr["density_fold"].to_numpy() == pytest.approx([1.0, 1.0])
    assert tr["core_fold"].to_numpy() == pytest.approx([50, 50])
    eff = factor_effect(df, "optimizer", reference="adam")
    assert len(eff) == 1 and eff.iloc[0]["pairs"] == 21
    adam = df[df.optimizer == "adam"]["density"].mean()
    assert eff.iloc[0]["diff"] == pytest.approx(-0.3 * adam)


def _verdict(df, claim, **kwargs):
    from prunekit.studies.s000_density import claims_table

    t = claims_table(df, **kwargs).set_index("claim")
    return t.loc[claim, "verdict"], t.loc[claim, "measured"], t.loc[claim, "interval"]


NULL = "Null hypothesis (|ω| constant in width) rejected"
FLAT = "Effective density roughly constant across widths"
FC = "Fully connected + SGD gives a lower density than with Adam"
CONV = "Conv + Adam gives a higher density than conv + SGD"
INIT = "Glorot gives slightly lower density than He"


def test_claims_follow_the_numbers():
    yes = _table(1.0)  # |ω| grows like |θ|: density flat, the null rejected; SGD's cores are 0.7x Adam's
    assert [_verdict(yes, c)[0] for c in (NULL, FLAT, FC)] == ["holds"] * 3
    no = _table(0.0)  # a constant core: density falls like 1/width (50x over the range), slopes near 0
    verdict, measured, _ = _verdict(no, NULL)
    assert verdict == "cannot decide here" and "includes 0" in measured  # a slope of 0 +- noise: no rejection
    verdict, measured, _ = _verdict(no, FLAT)
    assert verdict == "does not hold" and "clearly not in 2" in measured
    shrinking = _table(-0.2)  # |ω| shrinks with width: the slope interval is below 0 in every series
    assert _verdict(shrinking, NULL)[0] == "does not hold"


def _density_series(exponents, noise=0.01, seed=0):
    """One width series per exponent b: density = 0.2 * width**b (times noise), three seeds per width."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, b in enumerate(exponents):
        for w in (0.1, 0.25, 0.5, 1, 2, 3, 5):
            for s in range(3):
                d = 0.2 * w ** b * np.exp(rng.normal(0, noise))
                params = int(50000 * w)
                rows.append(dict(dataset="mnist", arch="lenet300", width_mult=w, optimizer=f"opt{i}",
                                 init="he_normal", seed=s, params=params, core_params=d * params, density=d,
                                 dense_accuracy=0.9))
    return pd.DataFrame(rows)


def test_density_is_judged_against_the_change_in_width():
    """A series is flat when density moves by less than 2x over the source's 50x range of widths: 50**0.1 = 1.48x
    is, 50**0.3 = 3.2x is not (although |ω| still grows 50**1.3 = 162x against |θ|'s 50x: judged against the
    width, not against the core's growth)."""
    assert _verdict(_density_series([0.1]), FLAT)[0] == "holds"
    verdict, measured, interval = _verdict(_density_series([0.3]), FLAT)
    assert verdict == "does not hold" and "factor 3.22" in measured and "3.18 to 3.25" in interval
    assert _verdict(_density_series([0.05, 0.1, 0.12, 0.35]), FLAT)[0] == "holds"  # 3 of 4 flat, 1 not
    assert _verdict(_density_series([0.05, 0.1, 0.3, 0.35]), FLAT)[0] == "cannot decide here"  # series disagree
    assert _verdict(_density_series([0.05, 0.3, 0.35]), FLAT)[0] == "does not hold"  # most clearly not
    assert _verdict(_density_series([0.177], noise=0.05), FLAT)[0] == "cannot decide here"  # 2x: on the line
    assert _verdict(_density_series([0.3]), FLAT, density_fold=4.0)[0] == "holds"  # the threshold is a parameter


def _pairs(diffs, factor="init", level="glorot_uniform", reference="he_normal", arch="lenet300"):
    """Rows paired on everything but ``factor``: density(level) - density(reference) = each of ``diffs``."""
    rows = []
    for s, d in enumerate(diffs):
        base = dict(dataset="mnist", arch=arch, width_mult=1.0, optimizer="adam", init="he_normal", seed=s,
                    params=1000, dense_accuracy=0.9)
        rows.append({**base, factor: reference, "density": 0.5, "core_params": 500})
        rows.append({**base, factor: level, "density": 0.5 + d, "core_params": 1000 * (0.5 + d)})
    return pd.DataFrame(rows)


def _init_and_optimizer(init_diffs, optimizer_diffs):
    """Glorot - He pairs and, apart, SGD - Adam pairs of the same fully connected arch (seeds 100 on)."""
    scale = _pairs(optimizer_diffs, "optimizer", "sgd", "adam").assign(seed=lambda t: t.seed + 100)
    return pd.concat([_pairs(init_diffs), scale], ignore_index=True)


def test_paired_verdicts_are_decided_on_their_t_interval():
    """Hand-worked: differences -0.01, -0.02, -0.03 have mean -0.02 and sd 0.01, so the 95% t interval is
    -0.02 +- 4.303 * 0.01 / sqrt(3) = [-0.0448, +0.0048]: it straddles 0. Adding a fourth pair (-0.02) gives
    -0.02 +- 3.182 * 0.008165 / 2 = [-0.0330, -0.0070]: wholly below 0. "Slightly" is judged against the SGD - Adam
    effect: 0.02 against 0.2 (a tenth) is slight; against 0.02 (the same size) it cannot be told; against 0.004 it
    is five times as large, not slight."""
    big = [-0.19, -0.2, -0.21, -0.2]
    verdict, _, interval = _verdict(_init_and_optimizer([-0.01, -0.02, -0.03], big), INIT)
    assert verdict == "cannot decide here" and "-0.045 to +0.005" in interval
    verdict, measured, interval = _verdict(_init_and_optimizer([-0.01, -0.02, -0.03, -0.02], big), INIT)
    assert verdict == "holds" and "-0.033 to -0.007" in interval and "is 0.10 of it" in measured
    assert "|Glorot - He| / |SGD - Adam| (fully connected): 0.10 [95% CI" in interval
    same = [-0.01, -0.02, -0.03, -0.02]
    assert _verdict(_init_and_optimizer([-0.01, -0.02, -0.03, -0.02], same), INIT)[0] == "cannot decide here"
    tiny = [-0.003, -0.004, -0.005, -0.004]
    verdict, measured, _ = _verdict(_init_and_optimizer([-0.01, -0.02, -0.03, -0.02], tiny), INIT)
    assert verdict == "does not hold" and "is 5.00 of it" in measured  # lower, but not slightly
    verdict, measured, _ = _verdict(_pairs([-0.01, -0.02, -0.03, -0.02]), INIT)  # nothing to judge the size by
    assert verdict == "cannot decide here" and "no SGD and Adam pairs" in measured
    # the yardstick must be an effect itself: SGD - Adam pairs of mean 0 (interval across 0) judge nothing
    verdict, measured, _ = _verdict(_init_and_optimizer([-0.01, -0.02, -0.03, -0.02], [-0.2, 0.2, -0.1, 0.1]), INIT)
    assert verdict == "cannot decide here" and "is not established here" in measured
    # "slightly" on the fully connected nets alone: Glorot - He pairs of conv nets are not held against it
    conv_init = pd.concat([_pairs([-0.01, -0.02, -0.03, -0.02], arch="conv"),
                           _pairs(big, "optimizer", "sgd", "adam").assign(seed=lambda t: t.seed + 100)])
    verdict, measured, _ = _verdict(conv_init, INIT)
    assert verdict == "cannot decide here" and "Glorot and He pairs of fully connected nets" in measured
    assert _verdict(_init_and_optimizer([0.01, 0.02, 0.03, 0.02], big), INIT)[0] == "does not hold"  # Glorot denser
    verdict, measured, _ = _verdict(_init_and_optimizer([0.0, 0.0, 0.0], big), INIT)  # identical: a tie
    assert verdict == "cannot decide here" and "a tie" in measured
    assert _verdict(_init_and_optimizer([-0.02], big), INIT)[0] == "cannot decide here"  # one pair: no interval
    conv = _pairs([0.01, 0.02, 0.03, 0.02], "optimizer", "adam", "sgd", arch="conv")
    assert _verdict(conv, CONV)[0] == "holds"
    resnet = conv.assign(arch="resnet")  # Adam runs on residual nets do not count for the conv claim
    assert _verdict(resnet, CONV)[0] == "not measured here"


def test_untrained_models_are_left_out_of_fits_and_verdicts():
    table = _table(1.0)
    assert "Left out" not in " ".join(claims(table, min_dense_accuracy=0.5))
    narrow = table["width_mult"] == table["width_mult"].min()
    table.loc[narrow, "dense_accuracy"] = 0.12
    table.loc[narrow, "core_params"] = 1  # a chance-level model: its "core" says nothing, and drags the slope
    table.loc[narrow, "density"] = 1 / table.loc[narrow, "params"]
    learned, untrained = split_untrained(table, 0.5)
    assert len(untrained) == narrow.sum() and len(learned) == len(table) - narrow.sum()
    kept = " ".join(claims(table, min_dense_accuracy=0.5))
    assert f"{narrow.sum()} of {len(table)} models" in kept
    assert _verdict(table, FLAT, min_dense_accuracy=0.5)[0] == "holds"
    assert _verdict(table, FLAT, min_dense_accuracy=0.0)[0] != "holds"  # with them, density is off
    with pytest.raises(ValueError, match="min_dense_accuracy"):
        split_untrained(table, 50)


def test_width_grid_per_arch_settings():
    cfgs = width_grid({"lenet300": ["digits"], "conv": ["digits"], "resnet": []}, [0.5, 1], ["sgd", "adam"],
                      {"lenet300": ["glorot", "he"], "conv": ["he"]}, [0], epochs={"lenet300": 3, "conv": 1},
                      subset={"conv": 500}, resize={"conv": 6}, batch_size={"lenet300": 64, "conv": 16})
    assert len(cfgs) == 2 * 2 * 2 + 2 * 2
    conv = [c for c in cfgs if c.model.arch == "conv"]
    assert all(c.epochs == 1 and c.data.subset == 500 and c.data.resize == 6 and c.batch_size == 16 for c in conv)
    assert all(c.batch_size == 64 for c in cfgs if c.model.arch == "lenet300")
    assert all(c.lr == 0.05 and c.momentum == 0.9 for c in cfgs if c.optimizer == "sgd")
    assert all(c.lr == 1e-3 for c in cfgs if c.optimizer == "adam")


# ------------------------------------------------------------------------ claims that the table cannot decide
def _verdicts(table):
    return dict(zip(table["claim"], table["verdict"]))


def test_claims_table_format_and_verdicts():
    from prunekit.report.claims import COLUMNS, VERDICTS
    from prunekit.studies.s000_density import claims_table

    t = claims_table(_table(1.0, inits=("he_normal", "glorot_uniform")), setup="a test grid")
    assert list(t.columns) == COLUMNS and set(t["verdict"]) <= set(VERDICTS) and len(t) == 5
    assert (t["setup"] == "a test grid").all() and (t["seeds"] == "0, 1, 2").all() and t["quote"].str.len().min() > 40
    v = _verdicts(t)
    assert v[NULL] == "holds" and v[FLAT] == "holds" and v[FC] == "holds"
    assert v[CONV] == "not measured here"       # no conv rows
    assert v[INIT] == "cannot decide here"      # the same densities up to noise: the interval straddles 0


@pytest.mark.parametrize("case", ["glorot_and_he_unpaired", "one_init", "no_init_column", "one_optimizer",
                                  "empty", "two_widths", "conv_without_adam", "one_glorot_pair"])
def test_claims_never_raise_and_say_why(case):
    from prunekit.studies.s000_density import claims, claims_table

    df = _table(1.0, inits=("he_normal", "glorot_uniform"))
    if case == "glorot_and_he_unpaired":   # the case that raised KeyError 'init': both inits, no pair
        df = df[((df.init == "he_normal") & (df.seed == 0)) | ((df.init == "glorot_uniform") & (df.seed == 1))]
    elif case == "one_init":
        df = df[df.init == "he_normal"]
    elif case == "no_init_column":
        df = df.drop(columns="init")
    elif case == "one_optimizer":
        df = df[df.optimizer == "adam"]
    elif case == "empty":
        df = df.iloc[:0]
    elif case == "two_widths":             # 2 models per series: no fit
        df = df[(df.width_mult.isin([1, 2])) & (df.seed == 0)]
    elif case == "conv_without_adam":
        df = df.assign(arch="conv")[lambda d: d.optimizer == "sgd"]
    elif case == "one_glorot_pair":
        df = df[(df.init == "he_normal") | ((df.width_mult == 1) & (df.seed == 0) & (df.optimizer == "adam"))]
    table = claims_table(df)
    text = " ".join(claims(df))
    assert len(table) == 5
    v = _verdicts(table)
    if case in ("glorot_and_he_unpaired", "one_init", "no_init_column", "empty"):
        assert v[INIT] == "not measured here"
        assert "Not measured here:" in table.set_index("claim").loc[INIT, "measured"]
    if case == "glorot_and_he_unpaired":
        assert "paired" in table.set_index("claim").loc[INIT, "measured"]
    if case in ("no_init_column", "empty"):
        assert set(v.values()) == {"not measured here"}
        assert ("lacks the column init" if case == "no_init_column" else "empty") in text
    if case == "one_optimizer":
        assert v[FC] == "not measured here" and "SGD and Adam runs paired" in text
    if case == "two_widths":
        assert v[NULL] == "not measured here" and v[FLAT] == "not measured here"
    if case == "conv_without_adam":
        assert v[CONV] == "not measured here"
    if case == "one_glorot_pair":     # one pair: a difference, no interval
        assert v[INIT] == "cannot decide here" and "one pair gives no interval" in text


def test_factor_effect_without_pairs_has_columns():
    df = _table(1.0, inits=("he_normal", "glorot_uniform"))
    df = df[((df.init == "he_normal") & (df.seed == 0)) | ((df.init == "glorot_uniform") & (df.seed == 1))]
    eff = factor_effect(df, "init", reference="he_normal", by=())
    assert eff.empty and "init" in eff.columns and "pairs" in eff.columns


def test_the_full_profile_grid_is_the_sources_reading():
    from prunekit.studies import s000_density as I

    p = I.preset("full")
    configs = I.width_grid(p.archs, p.widths, p.optimizers, p.inits, p.seeds, epochs=p.epochs,
                           batch_size=p.batch_size, subset=p.subset, resize=p.resize,
                           patience=p.patience, min_improvement=p.min_improvement)
    assert configs == p.grid()
    assert len(configs) == 3 * 2 * 7 * 3 * 2 * 3                      # archs x data sets x widths x opt x init x seed
    assert {(c.patience, c.min_improvement, c.epochs) for c in configs} == {(3, 0.01, 100)}
    assert {c.data.subset for c in configs} == {None} and {c.data.resize for c in configs} == {None}
    assert {c.optimizer for c in configs} == {"sgd", "adam", "adagrad"}
    assert {c.model.init for c in configs} == {"glorot_uniform", "he_normal"}
    assert max(c.model.width_mult for c in configs) / min(c.model.width_mult for c in configs) == 50
    quick = I.preset("quick")
    old = I.width_grid(quick.archs, quick.widths, quick.optimizers, quick.inits, quick.seeds,
                       epochs=quick.epochs, batch_size=quick.batch_size)
    assert all(c.patience == 0 and "patience" not in c.identity() for c in old)   # other profiles keep their keys


def test_fc_sgd_is_set_against_adam_and_a_table_without_dense_accuracy_is_fine():
    """The source sets SGD against Adam: an Adagrad that is sparser still does not refute "SGD lower than Adam"."""
    import pandas as pd

    sgd_vs_adam = _pairs([-0.02, -0.03, -0.025, -0.02], "optimizer", "sgd", "adam")
    adagrad = sgd_vs_adam[sgd_vs_adam.optimizer == "adam"].assign(optimizer="adagrad", density=0.3)
    table = pd.concat([sgd_vs_adam, adagrad], ignore_index=True)
    verdict, measured, _ = _verdict(table, FC)
    assert verdict == "holds" and "also adagrad 0.300" in measured
    no_dense = _table(1.0).drop(columns="dense_accuracy")
    assert _verdict(no_dense, NULL, min_dense_accuracy=0.0)[0] == "holds"  # no KeyError without the column


def test_the_means_in_a_paired_claim_are_over_its_pairs():
    """An unpaired Glorot run of high density must not enter the means the claim prints: their difference is the
    paired difference its interval is about (here -0.02 per pair: 0.480 against 0.500)."""
    df = _init_and_optimizer([-0.01, -0.02, -0.03, -0.02], [-0.19, -0.2, -0.21, -0.2])
    lone = dict(dataset="mnist", arch="lenet300", width_mult=2.0, optimizer="adam", init="glorot_uniform", seed=0,
                params=2000, dense_accuracy=0.9, density=0.9, core_params=1800)
    verdict, measured, interval = _verdict(pd.concat([df, pd.DataFrame([lone])], ignore_index=True), INIT)
    assert verdict == "holds" and "over the 4 pairs: 0.480 with Glorot, 0.500 with He" in measured
    assert "-0.020" in interval


def test_the_sweep_takes_cifar10_as_each_profile_says_and_skips_missing_data(monkeypatch, tmp_path):
    """quick never adds CIFAR-10; paper when asked (use_cifar10); full when asked or when its files are here. A data
    set whose files are missing is skipped, with the reason, never downloaded."""
    from prunekit.studies import s000_density as I

    monkeypatch.setenv("PRUNEKIT_DATA", str(tmp_path))                         # an empty data folder
    configs, skipped = I.preset("quick").sweep_configs(use_cifar10=True)
    assert {c.data.name for c in configs} == {"digits"} and not skipped
    assert set(I.preset("paper").sweep_configs()[1]) == {"mnist"}
    configs, skipped = I.preset("paper").sweep_configs(use_cifar10=True)
    assert not configs and set(skipped) == {"mnist", "cifar10"}
    assert set(I.preset("full").sweep_configs()[1]) == {"mnist", "fashion_mnist"}
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (batches / name).write_bytes(b"")                 # its files' names: full takes it up (these cannot be read)
    configs, skipped = I.preset("full").sweep_configs()
    assert "cifar10" in {c.data.name for c in configs} | set(skipped) and {"mnist", "fashion_mnist"} <= set(skipped)
    assert "cifar10" not in {c.data.name for c in I.preset("paper").sweep_configs()[0]} | set(
        I.preset("paper").sweep_configs()[1])                                  # paper: only when asked
