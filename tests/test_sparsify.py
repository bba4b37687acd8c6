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
