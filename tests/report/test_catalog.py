"""prunekit.report.catalog lists the studies once: every notebook has its row, and the site, the README and each
study's claims read their names, questions and headline figures from it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from prunekit.report import catalog

REPO = Path(__file__).resolve().parents[2]


def test_every_notebook_has_one_row_and_every_row_a_notebook():
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [s.notebook for s in catalog.STUDIES] == notebooks  # in notebook order
    assert len({s.number for s in catalog.STUDIES}) == len(catalog.STUDIES)


def test_each_study_names_modules_that_exist_and_its_claims_name_its_source():
    for row in catalog.STUDIES:
        for name in row.modules:
            module = importlib.import_module(name)
            source = getattr(module, "SOURCE", None)
            if source is not None:  # a source's study: its claims are that source's
                assert len(row.sources) == 1 and source == catalog.SOURCES[row.sources[0]], (name, source)


def test_the_site_and_the_readme_show_the_catalogs_headline_figures():
    from prunekit.report import readme, site

    assert site.HEADLINE_FIGURES == catalog.headline_figures() == readme.HEADLINE_FIGURES
    assert list(site.HEADLINE_FIGURES) == ["02_accuracy_vs_sparsity", "03_density_vs_width", "05_random_ablation",
                                           "06_neuron_saliency_removable"]  # notebook order, one per source


def test_the_readmes_table_of_notebooks_is_the_catalog():
    text = (REPO / "README.md").read_text()
    table = text.split("## What it reproduces", 1)[1].split("\n\n", 2)[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    expected = [[f"`{s.notebook}`", ", ".join(s.sources) or "(all)", s.question] for s in catalog.STUDIES]
    assert rows == expected


def test_a_row_is_checked_and_a_lookup_names_the_notebooks():
    with pytest.raises(ValueError, match="sources"):
        catalog.Study("08_new", ("004",), (), "a question?")
    with pytest.raises(ValueError, match="modules"):
        catalog.Study("08_new", (), ("a", "a"), "a question?")
    with pytest.raises(ValueError, match="notebook=.*05_weight_utility"):
        catalog.study("05_weights")
    assert catalog.source_of("06_neuron_saliency") == "001 The Incredible Shrinking Neural Network"
    with pytest.raises(ValueError, match="reproduces 3 sources"):
        catalog.source_of("07_your_model")
    assert re.fullmatch(r"\d\d", catalog.study("04_loss_surface").number)
