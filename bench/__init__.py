"""Benchmarks: `python -m bench [NAME ...]`. Each prints ratios measured in the same run, never asserts times."""
