"""The one measure signature: ``measure(model, data, *, params=None, ...)``.

Every measure of prunekit takes the model first and what it is measured on second, under one name, ``data``: ``(x,
y)`` tensors, a ``Split``, a prunekit ``Dataset`` (its test split) or any iterable of ``(x, y)`` batches such as a
``DataLoader`` (``prunekit.core.data.as_split``). Everything else is a keyword: ``params``, the ``(module,
"weight")`` pairs measured, defaults to :func:`measure_params` (``prunekit.core.prunable.prunable_parameters``, the
layer into the logits traced on ``data`` when the model names none); a measure that ranks weights takes ``scorer=``
(``prunekit.pruning.scorers``). A new measure is a function of that shape::

    def my_measure(model, data, *, params=None, scorer="magnitude"):
        params = measure_params(model, data, params)
        ...

Older calls keep working for one release: inputs ``x`` with their targets ``y`` by position (``measure(model, x,
y)``), and options given by position, which :func:`older_positional` maps to their keywords with a
``DeprecationWarning`` that names them; ``pruning_curve`` and ``inference_speedups`` also take their older order,
``(model, params, data, ks)``.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

from torch import nn

from ..core.data import as_split
from ..core.prunable import prunable_parameters
from ..core.weights import check_params

__all__ = ["measure_params"]  # older_positional and is_params: the measures' own machinery


def measure_params(model: nn.Module, data=None, params=None, *, include_output: bool = False,
                   output_fn=None) -> list[tuple[nn.Module, str]]:
    """The weights a measure covers: ``params`` checked (weights of ``model``, each once), or by default
    ``prunable_parameters(model)`` with the layer into the logits traced on two samples of ``data`` (any form of
    ``as_split``; a tensor of inputs too) when the model names none (``include_output=True`` keeps it)."""
    if params is not None:
        return check_params(params, model)
    example = None
    if data is not None:
        example = data if _is_tensor(data) else as_split(data, max_samples=2).x
    return prunable_parameters(model, include_output=include_output, example=example, output_fn=output_fn)


def _is_tensor(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (tuple, list))


def is_params(value) -> bool:
    """Whether ``value`` is a non-empty list or tuple of ``(module, attribute)`` pairs (the older calls' second
    positional argument), not data."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], nn.Module)
                    and isinstance(p[1], str) for p in value))


def older_positional(*names: str, quiet: tuple[str, ...] = ("y",), older_order: tuple[str, ...] = (),
                     older_when: Callable[[tuple], bool] = lambda args: is_params(args[1]),
                     renamed: dict[str, str] | None = None) -> Callable:
    """Decorate a measure of signature ``(model, data, *, ...)`` so that its older calls keep working for one release:

    * positional arguments after ``data`` are the keywords ``names``, in order (``y`` quietly: inputs with their
      targets is a form of data; the others with a ``DeprecationWarning`` naming them);
    * with ``older_order`` (an older order of the arguments after the model, such as the pruning curves'
      ``(params, data, ks, ...)``), a call whose positional arguments ``older_when`` recognises (by default: the
      second is a list of ``(module, attribute)`` pairs) takes its positional arguments after the model as those
      keywords, with a ``DeprecationWarning`` that shows the new call;
    * ``renamed`` keywords (``{"split": "data"}``) are passed under their new names, with a warning.

    ``inspect.signature`` of the decorated function is the new signature.
    """
    renamed = dict(renamed or {})

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def call(*args, **kwargs):
            old_forms: list[str] = []
            moved: list[str] = []  # the keywords the older call gave another way
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__name__}() got {old}= and {new}=: pass {new}= only")
                    kwargs[new] = kwargs.pop(old)
                    old_forms.append(f"the keyword {old}= (now {new}=)")
            if older_order and len(args) >= 2 and older_when(args):
                head, extra, order = args[:1], args[1:], older_order
                old_forms.append(f"the order {fn.__name__}(model, {', '.join(older_order[:len(extra)])})")
                moved = [n for n in order[:len(extra)] if n != "data"]
            else:
                head, extra, order = args[:2], args[2:], names
                loud = [n for n in order[:len(extra)] if n not in quiet]
                if loud:
                    old_forms.append(f"{', '.join(loud)} by position")
                    moved = list(order[:len(extra)])
            if len(extra) > len(order):
                raise TypeError(f"{fn.__name__}() takes model and data by position, and at most {len(order)} older "
                                f"positional arguments after them; got {len(args)} positional arguments")
            for name, value in zip(order, extra):
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}() got multiple values for argument {name!r}")
                kwargs[name] = value
            if old_forms:
                data = "(x, y)" if "y" in moved else "data"
                new_call = ", ".join(["model", data] + [f"{n}=..." for n in moved if n != "y"])
                warnings.warn(f"{fn.__name__}: {'; '.join(old_forms)} is deprecated and goes in the next release: "
                              f"call {fn.__name__}({new_call}), the model and the data by position and every other "
                              "argument by keyword (prunekit.measures.protocol)", DeprecationWarning, stacklevel=2)
            return fn(*head, **kwargs)

        return call

    return decorate
