"""Source 003's study layer (prunekit.studies.s003_sparsify): the blog's setup, when pruning saves time, and the speed claim."""

import math

import pandas as pd
import pytest

from prunekit.studies import s003_sparsify as Sp
from prunekit.report.claims import COLUMNS


def test_the_blogs_setup_feeds_raw_pixels_and_otherwise_trains_alike():
    ours, blog = Sp.challenge_config("paper", "fashion_mnist", 1), Sp.challenge_config("paper", "fashion_mnist", 1,
                                                                                       setup="blog")
    assert (blog.data.raw_pixels, blog.data.normalize) == (True, False) and ours.data.normalize
    assert blog.replace(raw_pixels=False, normalize=True).key() == ours.key()     # the only difference
    assert (blog.optimizer, blog.lr, blog.batch_size, blog.epochs, blog.model.arch) == ("adam", 1e-3, 32, 5, "forai")
    with pytest.raises(ValueError, match="setup"):
        Sp.challenge_config("paper", "mnist", 0, setup="theirs")


def _timing(rows):
    return pd.DataFrame([{"batch_size": b, "form": f, "k": k, "speedup": s, "flop_ratio": r}
                         for b, f, k, s, r in rows])


def test_speed_summary_finds_where_a_form_stays_faster():
    t = _timing([(256, "csr", 0, 1.0, 1.0), (256, "csr", 50, 0.4, 2.0), (256, "csr", 90, 1.2, 10.0),
                 (256, "csr", 95, 0.9, 20.0), (256, "csr", 99, 3.0, 100.0),            # not monotone: 95 is slower
                 (256, "compacted", 50, 1.5, 3.0), (256, "compacted", 90, 8.0, 40.0),
                 (256, "masked_dense", 50, 0.97, 2.0), (256, "masked_dense", 90, 0.99, 10.0),
                 (1, "csr", 50, 1.1, 2.0), (1, "csr", 90, 0.8, 10.0)])                  # faster, then slower again
    s = Sp.speed_summary(t).set_index(["batch_size", "form"])
    assert s.loc[(256, "csr"), "saves_from_k"] == 99 and s.loc[(256, "csr"), "flop_ratio_there"] == 100.0
    assert s.loc[(256, "compacted"), "saves_from_k"] == 50 and s.loc[(256, "compacted"), "speedup_there"] == 1.5
    assert math.isnan(s.loc[(256, "masked_dense"), "saves_from_k"]) and math.isnan(s.loc[(1, "csr"), "saves_from_k"])
    assert (s.loc[(256, "csr"), "best_speedup"], s.loc[(256, "csr"), "best_k"]) == (3.0, 99)
    with pytest.raises(ValueError, match="speedup"):
        Sp.speed_summary(t.drop(columns="speedup"))


def test_speed_claims_follow_their_rule_and_never_raise():
    both = Sp.speed_summary(_timing([(256, "csr", 90, 1.2, 10.0), (256, "compacted", 50, 1.5, 3.0),
                                     (1, "csr", 90, 0.5, 10.0)]))
    t = Sp.speed_claims(both)
    assert list(t.columns) == COLUMNS and t["verdict"].iloc[0] == "holds"
    assert "at batch 256: compacted units faster from k = 50% (1.50x there, FLOP ratio 3.00x" in t["measured"].iloc[0]
    # one form that saves time is enough: "save on matrix operations" does not ask for both
    one = Sp.speed_summary(_timing([(256, "csr", 90, 0.8, 10.0), (256, "compacted", 50, 1.5, 3.0)]))
    t = Sp.speed_claims(one)
    assert t["verdict"].iloc[0] == "holds"
    assert "CSR weights never faster than dense (best 0.80x)" in t["measured"].iloc[0]
    slow = Sp.speed_summary(_timing([(256, "csr", 90, 0.8, 10.0), (256, "compacted", 50, 0.9, 3.0)]))
    assert Sp.speed_claims(slow)["verdict"].iloc[0] == "does not hold"
    noise = Sp.speed_summary(_timing([(256, "csr", 90, 1.02, 10.0), (256, "compacted", 50, 0.9, 3.0)]))
    assert Sp.speed_claims(noise)["verdict"].iloc[0] == "cannot decide here"  # 2% faster: inside the 5% band
    for bad in (None, both.iloc[:0], both.drop(columns="saves_from_k"), both[both.form == "masked_dense"],
                pd.concat([both, both])):
        got = Sp.speed_claims(bad)
        assert got["verdict"].iloc[0] == "not measured here" and got["measured"].iloc[0].startswith("Not measured")


def test_speed_summary_leaves_out_what_was_not_timed():
    t = _timing([(256, "csr", 50, float("nan"), 2.0), (256, "compacted", 50, float("nan"), 3.0),
                 (256, "compacted", 90, 2.0, 40.0)])
    s = Sp.speed_summary(t)
    assert list(s["form"]) == ["compacted"] and s["saves_from_k"].iloc[0] == 90


def _curve(drops, setup="blog", dataset="fashion_mnist", scope="global", dense=0.90, seeds=(0, 1, 2)):
    """A pruning curve: for each method, ``drops[method]`` maps k to the accuracy drop from ``dense`` (a number for
    every seed, or one per seed)."""
    import pandas as pd

    rows = []
    for method, by_k in drops.items():
        for k, d in {0: 0.0, **by_k}.items():
            for i, s in enumerate(seeds):
                drop = d[i] if isinstance(d, (list, tuple)) else d
                rows.append({"setup": setup, "dataset": dataset, "method": method, "scope": scope, "seed": s,
                             "k": float(k), "accuracy": dense - drop, "sparsity": k / 100})
    return pd.DataFrame(rows)


BLOG = {"weight": {40: 0.0, 45: 0.0, 50: 0.0, 70: 0.002, 75: 0.004, 80: 0.02},
        "unit": {40: 0.0, 45: 0.005, 50: 0.008, 55: 0.05, 70: 0.3, 75: 0.4, 80: 0.5}}


def test_claims_table_003_is_decided_on_the_blogs_setup_at_the_sources_words():
    from prunekit.report.claims import COLUMNS
    from prunekit.studies.s003_sparsify import claims_table

    t = claims_table(_curve(BLOG))
    assert list(t.columns) == COLUMNS and list(t["verdict"]) == ["holds"] * 3
    assert t["setup"].str.startswith("the blog's own").all() and (t["seeds"] == "0, 1, 2").all()
    assert "at k = 70%: accuracy 89.8% against 90.0% dense" in t["measured"].iloc[0]
    assert "plateau ends at k = 75%, 75%, 75% by seed" in t["measured"].iloc[0]  # 80 costs 2 points
    assert "weight k = 75%, 75%, 75%; unit k = 50%, 50%, 50%" in t["measured"].iloc[2]
    # the blog's own numbers, one grid step from "just under 50%" on the source's grid, hold at k = 45
    # a unit plateau that falls before 45 does not
    early = {**BLOG, "unit": {40: 0.0, 45: 0.05, 50: 0.1}}
    assert claims_table(_curve(early))["verdict"].iloc[1] == "does not hold"
    # seeds that disagree about k = 45: one loses 3 points, two lose nothing; the interval straddles 1 point
    split = {**BLOG, "unit": {40: 0.0, 45: [0.0, 0.0, 0.03], 50: 0.1}}
    assert claims_table(_curve(split))["verdict"].iloc[1] == "cannot decide here"


def test_claims_table_003_ties_and_extensions():
    import pandas as pd

    from prunekit.studies.s003_sparsify import claims_table

    tie = {"weight": {70: 0.0, 75: 0.05}, "unit": {45: 0.0, 70: 0.0, 75: 0.05}}  # both plateaus end at 70
    row = claims_table(_curve(tie)).iloc[2]
    assert row["verdict"] == "cannot decide here" and "a tie at the k grid's resolution" in row["measured"]
    worse = {"weight": {45: 0.0, 50: 0.05, 70: 0.1}, "unit": {45: 0.0, 70: 0.0, 75: 0.05}}
    assert claims_table(_curve(worse))["verdict"].iloc[2] == "does not hold"
    both = pd.concat([_curve(BLOG), _curve(tie, setup="prunekit", dataset="mnist", scope="layerwise")])
    t = claims_table(both)
    assert len(t) == 6 and not t["claim"].iloc[0].endswith(")")  # the source's setup first, unlabelled
    assert t["claim"].iloc[3].endswith("(this project's extension: prunekit inputs, mnist, layerwise ranking)")
    assert t["setup"].iloc[3].startswith("this project's extension: standardised mnist, layerwise")


@pytest.mark.parametrize("drops, expected", [
    ({}, ["not measured here"] * 3),                                                       # empty
    ({"weight": {70: 0.0}}, ["holds", "not measured here", "not measured here"]),          # no unit rows
    ({"random_weight": {70: 0.0}}, ["not measured here"] * 3),                             # baselines only
    ({"weight": {60: 0.0}, "unit": {45: 0.0}}, ["not measured here", "holds", "holds"]),   # no k = 70 in the grid
])
def test_claims_table_003_never_raises(drops, expected):
    from prunekit.studies.s003_sparsify import claims_table, plateau_report, plateau_summary

    curve = _curve(drops) if drops else _curve({"weight": {}}).iloc[:0]
    assert list(claims_table(curve)["verdict"]) == expected
    assert list(claims_table(curve.drop(columns="method"))["verdict"]) == ["not measured here"] * 3
    assert "lacks the column method" in claims_table(curve.drop(columns="method"))["measured"].iloc[0]
    if len(curve):
        assert isinstance(plateau_report(plateau_summary(curve)), str)  # never raises, whatever the summary holds


def test_claims_table_003_leaves_a_band_between_holding_and_failing_and_never_raises_on_odd_curves():
    """The source's plateau declines ("a consistently negative derivative"): a 2-point drop at k = 70 is between the
    1-point tolerance and the 3 points a failure needs, so it is not decided; 4 points fail."""
    import pandas as pd

    from prunekit.studies.s003_sparsify import claims_table

    def weight_at_70(drop):
        return {**BLOG, "weight": {**BLOG["weight"], 70: drop}}

    assert claims_table(_curve(weight_at_70([0.019, 0.02, 0.021])))["verdict"].iloc[0] == "cannot decide here"
    assert claims_table(_curve(weight_at_70([0.039, 0.04, 0.041])))["verdict"].iloc[0] == "does not hold"
    no_dense = _curve(BLOG)
    no_dense = no_dense[~((no_dense.method == "unit") & (no_dense.k == 0))]
    t = claims_table(no_dense)
    assert t["verdict"].iloc[0] == "holds" and list(t["verdict"].iloc[1:]) == ["not measured here"] * 2
    nan_dense = _curve(BLOG)
    nan_dense.loc[(nan_dense.method == "unit") & (nan_dense.k == 0), "accuracy"] = float("nan")
    t = claims_table(nan_dense)  # no fake plateau at k = 99 from a NaN dense accuracy
    assert list(t["verdict"].iloc[1:]) == ["not measured here"] * 2
    assert isinstance(t, pd.DataFrame)
