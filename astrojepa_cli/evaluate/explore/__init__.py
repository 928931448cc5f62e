"""Exploring an embedding space: anomalies, similarity search, embedding files, 2-D maps, patch heatmaps and feature diagnostics."""
