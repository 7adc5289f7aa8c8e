"""Benchmarks: the design document's table, measured against real processes."""
