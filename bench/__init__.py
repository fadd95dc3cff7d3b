"""Lakewire's benchmark suite: each number beside a baseline measured in the same run.

A ratio against a baseline taken on the same machine in the same minute says more than an
absolute number from a machine nobody has; ``python -m bench`` writes one JSON per benchmark
under ``bench/results/`` and regenerates the table in ``docs/performance.md``.
"""
