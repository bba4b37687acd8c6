"""Reporting: the claims table format and its intervals, result tables and figures, the static site, the README's results, benchmarks."""
