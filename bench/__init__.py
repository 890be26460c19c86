"""Benchmarks that print figures; run as ``python -m bench.NAME``, last line ``RESULT key=value ...``.

Never timed assertions in tests: figures belong here, read by a person.
"""
