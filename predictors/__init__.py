"""Latency and accuracy predictors trained on measurements (next issues)."""
