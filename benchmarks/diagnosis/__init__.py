"""The parts of ``benchmarks/diagnose.py``: the run to diagnose, what is measured, the figure."""
