"""Reading digits in real pictures: picture -> normalised 28x28 digits -> model -> digit string."""

from digitocr.reading.recognizer import DigitReading, ReadResult, Recognizer

__all__ = ["DigitReading", "ReadResult", "Recognizer"]
