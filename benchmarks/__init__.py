"""Benchmarks: each ``bench_*.py`` module has ``main()`` that prints its figures.

Run all with ``make bench`` (``python -m benchmarks``) or one with
``python -m benchmarks simulator``. Benchmarks never gate: they print.
"""
