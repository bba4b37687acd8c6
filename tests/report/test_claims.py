"""Text for people: nouns in the right number, lists as prose, whole sentences without '(s)' or 'k = 0%'."""

import math

import pandas as pd
import pytest

from prunekit.report import claims as C
from prunekit.report.claims import lacking, listing, plural


@pytest.mark.parametrize("count, digits, expected", [(1, 0, "1 point"), (0, 0, "0 points"), (2, 0, "2 points"),
                                                     (0.5, 0, "0.5 points"), (1.0, 0, "1 point"),
                                                     (1.04, 1, "1.0 point"), (1.25, 2, "1.25 points")])
def test_plural(count, digits, expected):
    assert plural(count, "point", digits=digits) == expected
    assert plural(3, "index", "indices") == "3 indices"
    assert plural(1_000_000, "weight") == "1,000,000 weights"  # not 1e+06


def test_listing_and_lacking():
    assert listing([]) == "none" and listing([], none="no optimizer") == "no optimizer"
    assert listing(["a"]) == "a" and listing(["a", "b"]) == "a and b" and listing(["a", "b", "c"]) == "a, b and c"
    assert lacking([]) == "the table is empty"
    assert lacking(["init"], "summary") == "the summary lacks the column init"
    assert lacking(["a", "b"]) == "the table lacks the columns a and b"


def _plateau(k, next_k, acc_next):
    return pd.DataFrame([{"dataset": "mnist", "method": "weight", "scope": "global", "dense_accuracy": 0.98,
                          "holds_to_k": k, "accuracy_there": 0.975, "next_k": next_k, "accuracy_next": acc_next}])


def test_plateau_report_is_whole_sentences_with_integer_k():
    from prunekit.studies.s003_sparsify import plateau_report

    text = plateau_report(_plateau(80.0, 90.0, 0.9), tolerance=0.01)
    assert "within 1 point of the dense 98.0% up to k = 80% (97.5%); at k = 90% it falls to 90.0%" in text
    assert "(s)" not in text and "80.0" not in text and text.endswith("for weight pruning.")
    zero = plateau_report(_plateau(0.0, 25.0, 0.5), tolerance=0.02)
    assert "up to k = 0%" not in zero
    assert "falls more than 2 points below the dense 98.0% at the first level pruned; at k = 25% it falls" in zero
    assert "k = 97.5%" in plateau_report(_plateau(97.5, math.nan, math.nan))


def test_curve_tables_show_integer_k(tmp_path):
    import torch

    from prunekit.measures.curves import pruning_curve
    from prunekit.core.data import Split
    from prunekit.core.models import MLP
    from prunekit.core.prunable import prunable_parameters

    model = MLP(4, (6,), 3)
    split = Split(torch.randn(20, 4), torch.randint(0, 3, (20,)))
    df = pruning_curve(model, prunable_parameters(model), split, ks=[0, 50], methods=["weight"], scopes=["global"])
    assert df["k"].tolist() == [0, 50] and df["k"].dtype.kind == "i"
    df = pruning_curve(model, prunable_parameters(model), split, ks=[0, 12.5], methods=["weight"], scopes=["global"])
    assert df["k"].tolist() == [0.0, 12.5]


def test_decided_refutes_on_any_or_on_a_majority_of_intervals():
    from prunekit.report.claims import decided

    def verdict(sides, refute="any"):
        return decided("s", "c", "r", "m", sides, "rule", refute=refute)["verdict"]

    assert verdict([True, True]) == "holds" and verdict([True, False]) == "does not hold"
    assert verdict([None, False]) == "does not hold" and verdict([]) == "cannot decide here"
    assert verdict([True, False], "majority") == "cannot decide here"          # one against, one for
    assert verdict([None, None, False], "majority") == "cannot decide here"    # one of three against: chance?
    assert verdict([None, False, False], "majority") == "does not hold"
    assert verdict([True, False, False], "majority") == "cannot decide here"   # any interval for the claim
    assert verdict([True, True], "majority") == "holds"
    with pytest.raises(ValueError, match="refute"):
        verdict([True], "most")


def test_a_rule_template_is_filled_with_the_thresholds_of_one_call():
    from prunekit.report.claims import ClaimSpec, Quote

    spec = ClaimSpec("000 x", "A claim", Quote("a sentence", "abstract"), "the source's report",
                     "interval of the drop >= {min_drop:.0%} at k = {k:g}%")
    filled = spec.formatted(min_drop=0.1, k=70.0)
    assert filled.rule == "interval of the drop >= 10% at k = 70%" and filled.claim == spec.claim
    assert spec.rule.startswith("interval of the drop >= {")          # the declaration itself is left as it is
    assert filled.row("m", True)["rule"] == filled.rule
    with pytest.raises(ValueError, match="rule=.*min_drop"):
        spec.formatted(k=70.0)                                          # a threshold the template names, not given
    plain = ClaimSpec("000 x", "B", Quote("a sentence", "abstract"), "r", "a rule with no field")
    assert plain.formatted(k=1).rule == "a rule with no field"


def test_on_substitute_relabels_the_sources_decided_rows_both_ways_and_nothing_else():
    t = C.claims_frame([C.claim("s", "a", "r", "m", True, "rule", setup="digits"),
                        C.claim("s", "b", "r", "m", False, "rule"),
                        C.cannot_decide("s", "c", "r", "m", "why", "rule"),
                        C.not_measured("s", "d", "r", "why", "rule"),
                        C.claim("s", "e", "r", "m", True, "rule", kind="extension")])
    assert C.on_substitute(t, None) is t
    out = C.on_substitute(t, "digits for cifar10")
    assert list(out.verdict) == ["holds here (substitute setup)", "does not hold here (substitute setup)",
                                 "cannot decide here", "not measured here", "holds"]
    assert out.setup.iloc[0] == "digits (substitute setup: digits for cifar10)"
    assert out.setup.iloc[1] == "substitute setup: digits for cifar10" and out.setup.iloc[4] == ""
    assert list(t.verdict) == ["holds", "does not hold", "cannot decide here", "not measured here", "holds"]
    # counted apart: the substitute verdicts are their own entries, the extension's row its own kind
    assert C.verdict_counts(out) == {"source": {"holds here (substitute setup)": 1,
                                                "does not hold here (substitute setup)": 1,
                                                "cannot decide here": 1, "not measured here": 1},
                                     "extension": {"holds": 1}}
    assert C.verdict_counts(t.drop(columns="kind")) == {"source": {"holds": 2, "does not hold": 1,
                                                                   "cannot decide here": 1, "not measured here": 1}}
    assert C.verdict_counts(t.iloc[:0]) == {}


@pytest.mark.parametrize("sides, refute, expected", [
    ([], "any", None), ([True], "any", True), ([True, None], "any", None), ([True, False], "any", False),
    ([True, False], "majority", None), ([False, None], "majority", None), ([False, False, None], "majority", False),
    ([False, False, True], "majority", None), ([None, None], "majority", None),
])
def test_holds_of_every_side_for_a_claim_any_or_a_majority_against(sides, refute, expected):
    assert C.holds_of(sides, refute) is expected
