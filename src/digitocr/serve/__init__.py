"""The web page and REST API (`digitocr serve`): a FastAPI app that reads pictures with ``digitocr.reading``."""

from digitocr.serve.app import create_app
from digitocr.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
