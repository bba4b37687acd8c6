"""Input validation for the whole package: one message style, raised before any compute.

Every failure is a ``ValueError`` that names the parameter, the value given and what is allowed:
``"<name>=<value> is not supported; allowed values: ..."`` or ``"<name>=<value> is out of range; allowed: [lo, hi)"``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch

__all__ = ["choice", "choice_message", "number", "count", "fraction", "percentage", "sequence", "mapping", "generator",
           "pruned_count", "file_name", "text", "path", "distinct", "columns"]


def choice_message(name: str, value, allowed: Iterable) -> str:
    """The message of a value that is not one of ``allowed``."""
    return f"{name}={value!r} is not supported; allowed values: {', '.join(map(repr, tuple(allowed)))}"


def generator(value, seed: int = 0):
    """A ``torch.Generator`` as given, or one seeded with ``seed`` (an integer >= 0) for None (the package's random
    baselines)."""
    if value is None:
        return torch.Generator().manual_seed(count("seed", seed, low=0))
    if not isinstance(value, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(value).__name__}")
    return value


def choice(name: str, value, allowed: Iterable):
    """``value`` if it is one of ``allowed``, else ``ValueError`` listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(choice_message(name, value, allowed))
    return value


def number(name: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
           integer: bool = False):
    """``value`` if it is a finite real number (an integer when ``integer``) in the stated range, else ``ValueError``.

    Bounds are inclusive unless ``low_open`` / ``high_open``; None means unbounded. Booleans are not numbers here.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number" + (" (an integer)" if integer else ""))
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name}={value!r} must be a finite number")
    if integer and int(value) != value:
        raise ValueError(f"{name}={value!r} must be an integer")
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name}={value!r} is out of range; allowed: {rng}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name}={value!r} is out of range; allowed: {rng}")
    return value


def text(name: str, value, *, empty: bool = False) -> str:
    """``value`` if it is a string (non-empty unless ``empty``), else ``ValueError``."""
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{name}={value!r} must be a non-empty string" if not empty else
                         f"{name}={value!r} must be a string")
    return value


def path(name: str, value):
    """``value`` as a ``pathlib.Path`` if it is a non-empty string or path (a folder or file the caller chooses, so
    ``..`` is allowed), else ``ValueError``."""
    import os
    from pathlib import Path

    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(f"{name}={value!r} must be a path (a non-empty string or os.PathLike)")
    return Path(value)


def distinct(name: str, values) -> list:
    """``values`` as a list if no value appears twice (a repeated level would give two identical rows), else
    ``ValueError`` naming the first repeat."""
    values = list(values)
    seen = []
    for v in values:
        if v in seen:
            raise ValueError(f"{name}={values!r} repeats {v!r}: give each value once")
        seen.append(v)
    return values


def columns(name: str, value, df, *, nonempty: bool = True) -> list[str]:
    """``value`` (a column name or a list of them) as a list of columns that ``df`` has, else ``ValueError`` naming
    the missing ones and the columns there are."""
    names = [value] if isinstance(value, str) else sequence(name, value, nonempty=nonempty)
    missing = [c for c in names if not isinstance(c, str) or c not in df.columns]
    if missing:
        raise ValueError(f"{name}={value!r}: the table has no column {', '.join(map(repr, missing))}; its columns: "
                         f"{', '.join(map(str, df.columns))}")
    return distinct(name, names)


def count(name: str, value, *, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int if it is a whole number in [low, high] (a float such as 3.0 is accepted; 2.5, NaN, a
    string or a bool is not), else ``ValueError``."""
    return int(number(name, value, low=low, high=high, integer=True))


def sequence(name: str, value, *, nonempty: bool = True, item: Callable | None = None) -> list:
    """``value`` as a list if it is a list, tuple or other non-string iterable (non-empty when ``nonempty``), each
    element passed through ``item(f"{name}[i]", element)`` when given; a bare number, a string, None or a mapping is
    a ``ValueError`` that says what was expected."""
    if value is None or isinstance(value, (str, bytes, Mapping, numbers.Number, torch.Tensor)) \
            or not isinstance(value, Iterable):
        raise ValueError(f"{name}={value!r} must be a list (for example [{value!r}])" if isinstance(
            value, numbers.Number) else f"{name}={value!r} must be a list")
    out = list(value)
    if nonempty and not out:
        raise ValueError(f"{name}=[] is empty: give at least one value")
    return [item(f"{name}[{i}]", v) for i, v in enumerate(out)] if item is not None else out


def mapping(name: str, value, *, nonempty: bool = True) -> dict:
    """``value`` as a dict if it is a mapping (non-empty when ``nonempty``), else ``ValueError``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    if nonempty and not value:
        raise ValueError(f"{name}={{}} is empty: give at least one entry")
    return dict(value)


def fraction(name: str, value, *, low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a number in [0, 1] (ends open as asked), else ``ValueError``; a value in (1, 100]
    (a percentage where a fraction is meant) is told so, with the fraction it may have meant."""
    try:
        return float(number(name, value, low=0.0, high=1.0, low_open=low_open, high_open=high_open))
    except ValueError as err:
        if _plain_number(value) and 1 < value <= 100:
            raise ValueError(f"{err}; {name} is a fraction (0.8 = 80%): did you mean {name}={value / 100:g}?") from None
        raise


def percentage(name: str, value, *, high_open: bool = False) -> float:
    """``value`` as a float if it is a percentage in [0, 100] (``high_open``: below 100), else ``ValueError``.

    A value strictly between 0 and 1 is refused as a likely fraction (``k=0.8`` meant as 80%), with the percentage
    it may have meant: in prunekit ``k`` and ``ks`` are percentages, ``sparsity``, ``ratio(s)``, ``share`` and
    ``fraction(s)`` are fractions. (To prune fewer than 1% of the weights, prune a count:
    ``prunekit.pruning.select.masks_from_order``.)"""
    value = float(number(name, value, low=0.0, high=100.0, high_open=high_open))
    if 0 < value < 1:
        raise ValueError(f"{name}={value!r} is a percentage in [0, 100]: it would prune {value:g}% of the weights; did "
                         f"you mean {name}={value * 100:g}? (a percentage below 1 is refused as a likely fraction; "
                         "to prune fewer weights, prune a count with prunekit.pruning.select.masks_from_order)")
    return value


def _plain_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def file_name(name: str, value) -> str:
    """``value`` if it can name a file or folder inside another and stay there: letters, digits, ``_ - + .``, not
    starting with ``.`` and holding no ``..`` (so no ``/``, no way out of the folder), else ``ValueError``."""
    if not isinstance(value, str) or not _FILE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(f"{name}={value!r} must be a plain file name (letters, digits, '_', '-', '+', '.'; not "
                         "starting with '.', no '/' and no '..'), which stays inside its folder")
    return value


def pruned_count(k: float, n: int) -> int:
    """Number of elements pruned for k% of n: exactly ``round(k * n / 100)`` (Python's round, half to even), at most
    n. (Any k in [0, 100]: the package computes it from shares, so a k below 1 is not refused here.)"""
    k = number("k", k, low=0.0, high=100.0)
    n = count("n", n, low=0)
    return min(n, int(round(k * n / 100.0)))
