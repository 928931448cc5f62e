"""Probes of frozen and fine-tuned encoders: linear, kNN, label efficiency, fine-tuning, regression, and the protocols that run them."""
