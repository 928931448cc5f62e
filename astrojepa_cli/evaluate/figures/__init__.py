"""Figures: matplotlib plumbing, image mosaics, training curves, result plots, and which figures a run can show."""
