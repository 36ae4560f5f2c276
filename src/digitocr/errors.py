"""Exceptions that mean "the user can fix this": the CLI prints their message as one line, no traceback."""


class DigitOCRError(Exception):
    """Base of every error digitocr raises on purpose."""


class ConfigError(DigitOCRError, ValueError):
    """A setting has a value no run could use."""


class DataError(DigitOCRError):
    """MNIST is missing, truncated, corrupt or cannot be fetched."""


class ModelFileError(DigitOCRError):
    """A file is not a digitocr model, is damaged, or was changed after it was written."""


class ImageError(DigitOCRError):
    """A picture cannot be read: not an image, truncated, too large, or a decompression bomb."""


class TrainingDiverged(DigitOCRError):
    """The loss became NaN or infinite."""


class RankLost(DigitOCRError):
    """Training on several ranks (torchrun) stopped: another rank died, left, or stopped answering."""


class TrainingInterrupted(DigitOCRError):
    """Training stopped on Ctrl-C after saving a checkpoint to resume from."""

    def __init__(self, checkpoint_path: str):
        super().__init__(
            f"training interrupted; checkpoint saved to {checkpoint_path} (continue with --resume {checkpoint_path})"
        )
        self.checkpoint_path = checkpoint_path
