"""The README's results section is what `make readme` writes from the committed paper-profile claims table and run
times (docs/claims_paper.csv, docs/run_paper.csv): the README's table cannot disagree with the committed claims."""

from pathlib import Path

import pandas as pd
import pytest

from prunekit.report import readme as R

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_section_is_rendered_from_the_committed_claims():
    claims = pd.read_csv(R.claims_file(REPO), dtype={"notebook": str})
    run = pd.read_csv(R.run_file(REPO))
    text = (REPO / "README.md").read_text()
    assert text.count(R.START) == 1 and text.count(R.END) == 1
    got = text[text.index(R.START):text.index(R.END) + len(R.END)]
    assert got == R.section(claims, run), "README.md's results section is stale: run make readme"
    rows = [line for line in got.splitlines() if line.startswith("| 0")]
    ran = {n[:2] for n in run["notebook"]} - {"01", "07"}  # 01 and 07 have no claims
    assert len(rows) == len(claims) and ran and set(claims["notebook"]) == ran
    for line, verdict in zip(rows, claims["verdict"]):
        assert line.endswith(f"| **{verdict}** |")
    for png in [p for p in got.split("(") if p.startswith("figures/")]:
        assert (REPO / png.split(")")[0]).is_file()


def test_section_escapes_cells_and_counts_verdicts():
    claims = pd.DataFrame({"notebook": ["02", "05", "05"], "source": ["003 blog", "002 study", "002 study"],
                           "claim": ["a | b", "c", "d"], "kind": ["source", "source", "extension"],
                           "source_reports": ["x\ny", "z", "w"], "measured": ["m", "n", "o"],
                           "interval": ["+1 [95% CI 0 to 2]", float("nan"), ""],
                           "setup": ["blog", "resnet (substitute setup: digits for cifar10)", ""],
                           "verdict": ["holds", "cannot decide here", "holds"], "rule": ["r", "r", "r"]})
    run = pd.DataFrame({"notebook": ["02_pruning_curves", "05_weight_utility"], "wall_time_s": [600.0, 30.0],
                        "machine": ["a CPU, no GPU", "a CPU, no GPU"]})
    s = R.section(claims, run)
    assert s.startswith(R.START) and s.endswith(R.END)
    assert "| 02 | 003 | a \\| b | source | x y | m | +1 [95% CI 0 to 2] | **holds** |" in s
    assert "| 05 | 002 | c | source | z | n |  | **cannot decide here** |" in s
    assert "| 05 | 002 | d | extension | w | o |  | **holds** |" in s
    assert ("3 rows: 2 claims of the sources (1 holds, 1 cannot decide here) and 1 row of this project's extensions "
            "(1 holds)") in s and "10 min in all (02 10 min, 05 30 s)" in s
    assert "a substitute of the source's setup (source 002: digits for cifar10) reads" in s
    assert "on a CPU, no GPU" in s


def test_update_readme_needs_a_paper_run(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "executed_dir", lambda profile: tmp_path / "none")
    (tmp_path / "README.md").write_text(f"x\n{R.START}\nold\n{R.END}\n")
    with pytest.raises(ValueError, match="make reproduce PROFILE=paper"):
        R.update_readme(tmp_path)
    assert "old" in (tmp_path / "README.md").read_text()


def test_the_makefile_calls_the_command_line_with_arguments_it_accepts(monkeypatch):
    """`make readme`, `make claims` and `make report` pass arguments that `python -m prunekit` parses."""
    import re

    import prunekit.__main__ as cli
    from prunekit.report import readme, site

    calls = []
    monkeypatch.setattr(readme, "update_readme", lambda: calls.append("readme") or "README.md")
    monkeypatch.setattr(site, "build_report", lambda profile: calls.append(f"report {profile}") or "site")
    monkeypatch.setattr(cli, "gather_claims", lambda profile: calls.append(f"claims {profile}") or pd.DataFrame(
        {"verdict": ["holds"], "notebook": ["01"]}))
    lines = re.findall(r"-m prunekit (readme|claims|report)([^\n]*)", (REPO / "Makefile").read_text())
    assert {cmd for cmd, _ in lines} == {"readme", "claims", "report"}
    for cmd, rest in lines:
        args = [cmd] + rest.replace("$(PROFILE)", "paper").split()
        assert cli.main(args) == 0, args
    assert "readme" in calls and "claims paper" in calls and "report paper" in calls


FINDING = ("grows", "grow during", "stays in", "leaves the basin", "leave the basin", " holds", "removes", "denser",
           "sparser", "constant", "invariant", "beats", "collapses", "differ widely", "rejected", "misrank", "better",
           "worse", "to the accuracies", "breaks")
ATTRIBUTED = ("the source reports", "the source finds", "the source says", "the source claims", "where the source",
              "the claim", "is said to", "whether", "?", "hypothes", "question", "the results above")


def test_the_prose_states_no_result_the_claims_table_does_not_say():
    """The README's results are the generated section alone: outside it, "What it reproduces" describes each source's
    claims as the source's ("the source reports ..."), never as this project's finding (it once said ResNet20's
    imbalance grows during training while its row showed it falling, and that the source's diagonal misranks units,
    and that the source's setups are trained here to the accuracies it reports, neither of them measured)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## What it reproduces"):]
    section = section[:section.index("\n## ", 5)]
    import re

    unattributed = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", section)
                    if any(f in s for f in FINDING) and not any(a in s.lower() for a in ATTRIBUTED)]
    assert not unattributed, unattributed
    for verdict in ("does not hold", "cannot decide here", "holds here", "not measured here"):
        outside = text[:text.index(R.START)] + text[text.index(R.END):]
        assert verdict not in outside.replace('"' + verdict, "")  # only quoted as a verdict's name, never as one
