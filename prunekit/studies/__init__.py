"""One module (or package) per source, each in one shape (:mod:`prunekit.studies.protocol`): its presets, the runs its
notebook calls, its claims. ``prunekit.report.catalog.STUDIES`` lists them with their notebooks."""
