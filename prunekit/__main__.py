"""Command line: ``python -m prunekit claims --profile paper`` gathers every notebook's claims table of a profile into
``data/results/<profile>/claims.csv`` (``make claims``; ``$PRUNEKIT_RESULTS`` moves it, and the path printed is the
real one); ``python -m prunekit report --profile paper`` builds the
static site of its executed notebooks in ``data/report/<profile>/`` (``make report``); ``python -m prunekit readme``
rewrites the README's results section from the paper profile's claims (``make readme``); ``python -m prunekit
run-notebook notebooks/03_width_invariance.ipynb -p profile quick -p device cuda`` runs a notebook headless, without
Jupyter (``make test-gpu`` on a machine without papermill)."""

from __future__ import annotations

import argparse

from .core.config import PROFILES
from .report.claims import plural
from .report.tables import gather_claims, results_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunekit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    claims = commands.add_parser("claims", help="gather the notebooks' claims tables into claims.csv")
    claims.add_argument("--profile", default="quick", choices=PROFILES)
    report = commands.add_parser("report", help="a static site of the executed notebooks in data/report/<profile>/")
    report.add_argument("--profile", default="quick", choices=PROFILES)
    commands.add_parser("readme", help="the README's results section from the paper profile's claims table")
    run = commands.add_parser("run-notebook", help="run a notebook headless, without Jupyter (no outputs kept)")
    run.add_argument("notebook")
    run.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter, as papermill's -p (a Python literal, else text)")
    args = parser.parse_args(argv)
    if args.command == "run-notebook":
        from .report.headless import parameter_value, run_notebook

        seconds = run_notebook(args.notebook, {name: parameter_value(value) for name, value in args.p})
        print(f"{args.notebook}: ran in {seconds:.0f} s")
    if args.command == "readme":
        from .report.readme import update_readme  # each command imports only what it needs

        print(f"results section rewritten: {update_readme()}")
    if args.command == "report":
        from .report.site import build_report

        print(f"report: {build_report(args.profile)}")
    if args.command == "claims":
        table = gather_claims(args.profile)
        counts = table["verdict"].value_counts()
        print(f"{plural(len(table), 'claim')} of {plural(table['notebook'].nunique(), 'notebook')} ("
              + ", ".join(f"{n} {v}" for v, n in counts.items()) + f") -> {results_dir(args.profile) / 'claims.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
