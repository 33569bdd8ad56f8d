"""Benchmarks: each script measures handnet against its peers in the same run."""
