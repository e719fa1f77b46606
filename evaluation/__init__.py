"""Evaluation: `evaluation.metrics` is a pure numpy library; the Django app comes with its issue."""
