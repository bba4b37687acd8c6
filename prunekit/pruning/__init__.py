"""Pruning: masks, importance scorers, scores to masks, compaction, retraining, pruning cycles."""
