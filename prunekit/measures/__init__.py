"""Measures of how a network uses its weights: pruning curves, density, utility, saliency, the loss-surface plane; each
of one signature, ``measure(model, data, *, params=None, ...)`` (``prunekit.measures.protocol``)."""
