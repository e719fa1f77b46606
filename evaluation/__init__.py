"""Evaluation: the Django app of evaluation runs and their reports, on the pure `metrics` engine."""
