"""Benchmarks of digitocr against reference recipes; run as ``python -m benchmarks.compare``."""
