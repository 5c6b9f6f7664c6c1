"""reelforge's benchmarks: every figure is a ratio against an anchor measured in the same
run on the same machine (timings on a shared 2-core box are noisy; ratios much less so).

Run ``.venv/bin/python -m benchmarks`` (``--quick`` for a smoke run); the table is printed
and written to ``docs/benchmarks.md``.
"""
