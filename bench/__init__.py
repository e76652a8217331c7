"""Benchmarks of the session-bounded memory: turn overhead, bytes per session, cleanup,
HTTP load. Run `python -m bench` (`--quick` for a smoke run, `--help` for the sizes); the
tables are printed and the figures written to `bench/results/latest.json`.
"""
