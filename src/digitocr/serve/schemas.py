"""Pydantic shapes of the API's answers; the same JSON as `digitocr predict --json` (without "file")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

BOX = {"min_length": 4, "max_length": 4}  # a box is four numbers: x, y, width, height


class Guess(BaseModel):
    digit: int
    confidence: float


class DigitOut(BaseModel):
    # extra="allow": fields the reading pipeline adds to its JSON pass through unchanged, so the answer
    # stays the same object `digitocr predict --json` prints.
    model_config = ConfigDict(extra="allow")

    digit: int
    confidence: float = Field(description="softmax probability of `digit`")
    box: list[int] = Field(description="x, y, width, height in the uploaded picture's pixels", **BOX)
    top3: list[Guess]
    probabilities: list[float] | None = Field(
        None, description="all ten class probabilities, digit 0 first (only with ?probabilities=true)"
    )


class LineOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str = Field(description="the line's digits, left to right")
    box: list[int] = Field(description="x, y, width, height of its digits in the uploaded picture's pixels", **BOX)
    digits: list[DigitOut] = Field(description="the line's digits, left to right")


class PredictResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str = Field(
        description='the digits of each line left to right, the lines top to bottom joined by "\\n"; "" when none '
        "were found"
    )
    digits: list[DigitOut] = Field(description="every line's digits in reading order: the lines' digits, one list")
    lines: list[LineOut] = Field(description="the lines that hold digits, top to bottom; [] when none were found")


class ErrorDetail(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    model: str


class ModelCard(BaseModel):
    name: str = Field(description='which model is reading: "reader (shipped)" or the model file as given')
    path: str
    architecture: str = Field(description="name in digitocr.models.MODELS")
    model: dict = Field(description="the stored ModelConfig")
    parameters: int
    test_accuracy: float | None
    val_accuracy: float | None
    trained: str | None = Field(description="when the model file was written (UTC, ISO 8601)")
    data_sha256: str | None = Field(description="digest of the MNIST data it was trained on")
    weights_sha256: str | None
    versions: dict
