"""Local infrastructure for `python -m service dev`, the tests and the benchmarks."""
