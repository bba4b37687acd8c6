"""One module per source: its presets, the runs its notebook calls, its claims."""
