"""Pruning: importance scorers (one protocol, one registry), scores to masks, masks, what pruning reads of a model's
structure, compaction, retraining, pruning cycles."""
