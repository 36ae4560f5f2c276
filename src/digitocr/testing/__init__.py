"""Helpers for the tests, the benchmarks and the notebook: test pictures and a server in a child process.

The runtime (reading, serving, training, the CLI) never imports this package (tests/test_layout.py checks it).
``pictures``: synthetic pictures of digits and numbers; ``server``: ``digitocr serve`` in a subprocess.
"""
