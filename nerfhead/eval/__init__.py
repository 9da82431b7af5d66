"""Evaluation: metrics, baselines and reports."""
