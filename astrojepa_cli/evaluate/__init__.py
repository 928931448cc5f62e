"""Evaluation: features, probes, anomaly scores, collapse monitors and plots."""
