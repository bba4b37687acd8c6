"""make report: the static site of a profile's executed notebooks. Notebook 01 is executed (quick profile) into a
temporary folder, a claims table is written, and the site is built; its pages are checked as files and, where
Debian's chromium is installed (.ci/run installs it), rendered in headless Chromium: no empty page, no missing image,
no broken link. The screenshots land in data/report/ for a person to look at."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory, preset_run):
    """The quick profile's site of notebook 01 (executed here) and a two-notebook claims table."""
    import papermill as pm

    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.site import build_report
    from prunekit.report.tables import gather_claims, save_table

    root = tmp_path_factory.mktemp("report")
    mp = pytest.MonkeyPatch()
    for env, sub in (("PRUNEKIT_CACHE", "models"), ("PRUNEKIT_RESULTS", "results"), ("PRUNEKIT_FIGURES", "figures")):
        mp.setenv(env, str(root / sub))
    executed = root / "executed"
    executed.mkdir()
    pm.execute_notebook(str(REPO / "notebooks" / "01_training.ipynb"), str(executed / "01_training.ipynb"),
                        parameters={"profile": "quick"}, kernel_name="python3", progress_bar=False, cwd=str(root))
    save_table(claims_frame([claim("003 blog", "Holds <here>", "70-75%", "80%", True, "rule",
                                   interval="+1.0 [95% CI +0.5 to +1.5]"),
                             claim("000 density", "Not here", "flat", "x", "not measured here", "rule"),
                             claim("000 density", "Open", "flat", "x", None, "rule")]), "quick", "01_claims")
    preset_run("quick", "01_training")
    gather_claims("quick")
    curves = root / "figures" / "01_learning_curves_quick.png"
    (root / "figures" / "05_random_ablation_quick.png").write_bytes(curves.read_bytes())  # one headline figure
    index = build_report("quick", executed=executed, out=root / "site")
    yield index
    mp.undo()


def test_the_index_links_every_claim_to_its_notebook_section(site):
    page = site.read_text()
    assert "Holds &lt;here&gt;" in page and "<here>" not in page                # escaped, not injected
    assert page.count('class="verdict holds"') == 1 and page.count('class="verdict unmeasured"') == 1
    assert page.count('class="verdict undecided"') == 1 and "+1.0 [95% CI +0.5 to +1.5]" in page
    notebook = (site.parent / "01_training.html").read_text()
    anchor = re.findall(r'<h2 id="([^"]+)"', notebook)[-1]
    assert f'href="01_training.html#{anchor}"' in page                          # the notebook's last section
    assert 'src="figures/05_random_ablation_quick.png"' in page and (site.parent / "figures").is_dir()
    assert "require.min.js" not in notebook and 'src="mathjax/MathJax.js' in notebook
    env = (site.parent / "environment.html").read_text()
    assert "01_training" in env and "seed=0" in env and "torch" in env
    assert "seeds in its tables" in env


def test_a_second_build_converts_nothing_again(site, monkeypatch):
    from prunekit.report.site import build_report

    for env, sub in (("PRUNEKIT_RESULTS", "results"), ("PRUNEKIT_FIGURES", "figures")):
        monkeypatch.setenv(env, str(site.parent.parent / sub))
    page = site.parent / "01_training.html"
    before = page.stat().st_mtime_ns
    build_report("quick", executed=site.parent.parent / "executed", out=site.parent)
    assert page.stat().st_mtime_ns == before


def test_nothing_to_report_is_a_clear_error(tmp_path):
    from prunekit.report.site import build_report

    with pytest.raises(ValueError, match="make reproduce"):
        build_report("quick", executed=tmp_path, out=tmp_path / "site")
    assert not (tmp_path / "site").exists()


def _executed(folder: Path, name: str, papermill: dict | None) -> Path:
    """A copy of ``notebooks/<name>.ipynb`` in ``folder`` as papermill leaves it (``papermill``: its metadata; None: a
    notebook executed some other way)."""
    import json

    nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
    if papermill is not None:
        nb["metadata"]["papermill"] = {"duration": 12.0, "start_time": "2024-01-01T00:00:00", **papermill}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.ipynb").write_text(json.dumps(nb))
    return folder / f"{name}.ipynb"


OTHER_RUNS = {"an override injected": {"parameters": {"profile": "PROFILE", "seed": 3}},
              "another profile": {"parameters": {"profile": "full"}},
              "not run by papermill": None}


@pytest.mark.parametrize("run", list(OTHER_RUNS))
def test_the_report_refuses_an_executed_notebook_of_another_run(tmp_path, preset_run, run):
    """An overridden run's executed notebook placed in data/executed/<profile>/ is checked as the tables are: refused,
    before anything is written (it used to appear in the site beside the preset's claims)."""
    import json

    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.site import build_report
    from prunekit.report.tables import gather_claims, save_table

    papermill = json.loads(json.dumps(OTHER_RUNS[run]).replace("PROFILE", "quick"))
    _executed(tmp_path / "executed", "01_training", papermill)
    save_table(claims_frame([claim("003 blog", "c", "r", "m", True, "rule")]), "quick", "01_claims")
    preset_run("quick", "01_training")
    gather_claims("quick")
    with pytest.raises(ValueError, match=r"01_training.ipynb (was not executed by papermill|is a run with parameters)"):
        build_report("quick", executed=tmp_path / "executed", out=tmp_path / "site")
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("run", list(OTHER_RUNS))
def test_the_readme_refuses_the_wall_times_of_another_run(tmp_path, preset_run, monkeypatch, run):
    import json

    from prunekit.report import readme as R
    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.tables import gather_claims, save_table

    papermill = json.loads(json.dumps(OTHER_RUNS[run]).replace("PROFILE", "paper"))
    _executed(tmp_path / "executed", "02_pruning_curves", papermill)
    monkeypatch.setattr(R, "executed_dir", lambda profile: tmp_path / "executed")
    save_table(claims_frame([claim("003 blog", "c", "r", "m", True, "rule")]), "paper", "02_claims")
    preset_run("paper", "02_pruning_curves")
    gather_claims("paper")
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{R.START}\nold\n{R.END}\n")
    with pytest.raises(ValueError, match=r"02_pruning_curves.ipynb (was not executed by papermill|is a run with)"):
        R.update_readme(tmp_path)
    assert "old" in readme.read_text() and not (tmp_path / "docs").exists()


def test_the_preset_runs_executed_notebooks_pass_the_check(tmp_path):
    from prunekit.report.site import check_executed

    check_executed("paper", [_executed(tmp_path, "02_pruning_curves", {"parameters": {"profile": "paper"}}),
                             _executed(tmp_path, "05_weight_utility", {"parameters": {"profile": "paper",
                                                                                      "n_bands": 10}})])


def _check_dom(dom: str, page: Path) -> list[str]:
    """Problems of a rendered page: too little text, an image that is missing or empty, a link to nowhere."""
    problems = []
    dom = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)  # links in code are not links
    text = re.sub(r"<[^>]+>", " ", dom)
    if len(text.split()) < 50:
        problems.append(f"{page.name}: nearly empty ({len(text.split())} words)")
    for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', dom):
        if src.startswith("data:image/png;base64,"):
            data = base64.b64decode(src.split(",", 1)[1])
            if not data.startswith(b"\x89PNG") or len(data) < 1000:
                problems.append(f"{page.name}: an empty inline image")
        elif src.startswith("data:image/svg+xml,"):  # pdoc's inline logo
            if "<svg" not in unquote(src) or len(src) < 200:
                problems.append(f"{page.name}: an empty inline image")
        elif not (page.parent / unquote(src)).is_file():
            problems.append(f"{page.name}: missing image {src}")
    ids = set(re.findall(r'\sid="([^"]+)"', dom))
    for href in re.findall(r'<a[^>]*\shref="([^"]*)"', dom):
        url = urlparse(href)
        if url.scheme in ("http", "https", "mailto"):
            continue
        target = page if not url.path else page.parent / unquote(url.path)
        if not target.is_file():
            problems.append(f"{page.name}: broken link {href}")
        elif url.fragment:
            target_ids = ids if target == page else set(re.findall(r'\sid="([^"]+)"', target.read_text()))
            if unquote(url.fragment) not in {unquote(i) for i in target_ids}:
                problems.append(f"{page.name}: link to a missing section {href}")
    return problems


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_the_site_renders_in_chromium_with_no_missing_image_or_broken_link(site):
    shots = REPO / "data" / "report"
    shots.mkdir(parents=True, exist_ok=True)
    for page, shot in ((site, "report_index.png"), (site.parent / "01_training.html", "report_01_training.png")):
        cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--disable-background-networking", "--disable-component-update", "--no-first-run",
               "--window-size=1400,1800", "--virtual-time-budget=15000"]
        dom = subprocess.run([*cmd, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        assert not _check_dom(dom, page), _check_dom(dom, page)
        subprocess.run([*cmd, f"--screenshot={shots / shot}", page.as_uri()], capture_output=True, timeout=120)
        assert (shots / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (shots / shot).stat().st_size > 20_000


def test_the_site_serves_an_api_reference_of_every_public_module(site):
    import pkgutil

    import prunekit

    api = site.parent / "api"
    modules = [m.name for m in pkgutil.walk_packages(prunekit.__path__, "prunekit.")
               if not any(part.startswith("_") for part in m.name.split("."))]
    assert len(modules) > 30
    for name in modules:
        page = api / (name.replace(".", "/") + ".html")
        assert page.is_file(), f"no API page for {name}"
    assert not (api / "prunekit" / "measures" / "_ablation.html").exists()  # private engines stay out
    density = (api / "prunekit" / "measures" / "density.html").read_text()
    assert "effective_density" in density and "Hoyer" in density
    assert 'href="api/prunekit.html"' in site.read_text()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_an_api_page_renders_with_no_broken_link(site):
    page = site.parent / "api" / "prunekit" / "measures" / "density.html"
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert not _check_dom(dom, page), _check_dom(dom, page)
