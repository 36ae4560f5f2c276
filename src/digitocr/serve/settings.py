"""Settings of the web server, in one dataclass that `digitocr serve` builds and tests override."""

from __future__ import annotations

from dataclasses import dataclass

MEGABYTE = 1024 * 1024


@dataclass
class ServeSettings:
    model_path: str | None = None  # a model file, or a shipped model's name; None: the reader that ships
    device: str = "cpu"  # where the model runs; a digit is far too small to pay for a GPU round trip
    max_body_bytes: int = 10 * MEGABYTE  # larger request bodies get 413 before they are read
    # Decoded size limit: a tiny PNG can claim 100,000 x 100,000 pixels (a decompression bomb). 40 million
    # pixels still admits a 48-megapixel phone photo's usual 12-megapixel output with a wide margin.
    max_pixels: int = 40_000_000
