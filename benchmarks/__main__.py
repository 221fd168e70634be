"""`python -m benchmarks`: the benchmark suite (see benchmarks/__init__.py)."""

from benchmarks.suite import main

main()
