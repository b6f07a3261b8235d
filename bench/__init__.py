"""Benchmarks of the whole system (issue #8): `make bench` runs `python -m bench`; see bench/RESULTS.md."""
