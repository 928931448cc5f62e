"""The parts of ``benchmarks/sweep.py``: the sweep file, its results folder, scoring one job, the ranked table."""
