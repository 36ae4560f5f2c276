"""Reading digits in real pictures, one module per step, imported in this order only:

images (open, upright, grey) -> stages (paper, polarity, ink) -> segment (pieces, cuts of touching digits) ->
candidates (28x28 digit images) -> backends (the model: torch or ONNX) -> results -> choice (whole or cut,
digit or not) -> parallel (worker processes) -> recognizer (``Recognizer``, what callers use).
"""

from digitocr.reading.recognizer import Recognizer
from digitocr.reading.results import DigitReading, ReadResult

__all__ = ["DigitReading", "ReadResult", "Recognizer"]
