"""Evaluation: datasets, metrics, closed-book baselines, outcome tables and policy comparisons."""
