"""prunekit.core.estimate: the planned training time, said (and warned about) before a notebook trains anything."""

import warnings

import pytest
import torch

from prunekit.core import estimate as E
from prunekit.core.store import train_or_load
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig

DIGITS_TRAIN = 1347  # scikit-learn's 1,797 digits, 75% in prunekit's train split


def _cfg(**kw):
    return TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(arch="mlp"), epochs=2, **kw)


def test_duration_reads_like_a_person_would_say_it():
    assert [E.duration(s) for s in (0, 40, 89, 600, 5399, 5400, 36000, 2 * 86400)] == [
        "0 s", "40 s", "89 s", "10 min", "90 min", "1.5 h", "10.0 h", "2.0 days"]


def test_training_rate_is_positive_and_leaves_the_random_state_alone():
    state = torch.random.get_rng_state()
    rate = E.training_rate(_cfg(), (1, 8, 8), 10, steps=2)
    assert rate > 0 and torch.equal(state, torch.random.get_rng_state())
    with pytest.raises(ValueError, match="steps"):
        E.training_rate(_cfg(), (1, 8, 8), 10, steps=0)


def test_expect_counts_images_skips_what_is_cached_and_counts_retraining():
    cached, fresh = _cfg(), _cfg(seed=1)
    train_or_load(cached, quiet=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                     # no warning under the limit
        t = E.expect([cached, fresh, fresh], retraining=[(cached, 3)], warn_after=1e9)
    assert list(t["kind"]) == ["pretraining"] * 3 + ["retraining"]
    assert list(t["cached"]) == [True, False, True, False]                  # in the cache; new; named twice; retrained
    assert list(t["images"]) == [2 * DIGITS_TRAIN, 2 * DIGITS_TRAIN, 2 * DIGITS_TRAIN, 3 * DIGITS_TRAIN]
    assert (t.loc[t.cached, "seconds"] == 0).all() and (t.loc[~t.cached, "seconds"] > 0).all()
    assert t.attrs["seconds"] == pytest.approx(t["seconds"].sum()) and set(t["device"]) == {"cpu"}


def test_expect_warns_over_the_limit_with_the_figure_and_the_advice():
    with pytest.warns(E.LongRunWarning, match=r"notebook 99 plans 2,694 training images: about .* on cpu .* GPU"):
        E.expect([_cfg()], warn_after=0.0, label="notebook 99")


@pytest.mark.parametrize("kwargs,match", [
    ({"pretraining": ["not a config"]}, "TrainConfig"), ({"pretraining": [], "retraining": [(_cfg(), -1)]}, "epochs"),
    ({"pretraining": [], "warn_after": -1.0}, "warn_after")])
def test_bad_input_is_refused_before_anything_is_timed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        E.expect(**kwargs)
