"""The FastAPI app: the drawing page, POST /api/predict, health and model card.

The model is loaded once in ``lifespan``. The endpoint is ``async``: on the event loop it only moves bytes, and
it awaits ``ReadBatcher`` (``batching.py``), which decodes and reads the pictures of concurrent requests together
in a worker thread, so the loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from digitocr.config import ReadingConfig
from digitocr.errors import ImageError
from digitocr.serve.batching import ReadBatcher
from digitocr.serve.body_limit import DeclaredLengthLimit, too_large
from digitocr.serve.pictures import picture_bytes
from digitocr.serve.schemas import ErrorDetail, Health, ModelCard, PredictResponse
from digitocr.serve.settings import MEGABYTE, ServeSettings

STATIC = Path(__file__).parent / "static"

# What /api/predict takes, for the OpenAPI docs: the body is parsed by hand (three forms, one endpoint).
PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "format": "binary",
                            "description": "a picture in any format Pillow reads",
                        }
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {
                            "type": "string",
                            "minLength": 1,
                            "description": "a non-empty picture: a data URL (data:image/png;base64,...) or bare base64",
                        }
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
# Every error is an ErrorDetail, the 413 of an oversized Content-Length included (body_limit.py). 422 is
# FastAPI's own answer for a bad query parameter (?probabilities=maybe), documented by FastAPI itself.
ERRORS = {
    status: {"model": ErrorDetail, "description": text}
    for status, text in {
        400: "not a picture, truncated, a decompression bomb, or a malformed envelope (an empty or missing 'image', "
        "JSON that is invalid or nested too deeply)",
        413: f"the body is over the size limit ({ServeSettings.max_body_bytes // MEGABYTE} MB unless configured "
        "otherwise)",
        415: "a content type other than multipart, JSON or image/*",
    }.items()
}


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    app = FastAPI(title="digitocr", summary="Read handwritten digits in pictures.", lifespan=lifespan)
    app.state.settings = settings
    app.add_exception_handler(ImageError, lambda request, error: JSONResponse({"detail": str(error)}, status_code=400))
    # The body limit: a declared Content-Length over it gets 413 before a byte is read (DeclaredLengthLimit); a
    # streamed body is counted as it arrives and cut off at the limit (FastAPI's max_body_size, whose 413 the
    # handler below words). The limit is the router's, not the app's: the app's would sit outside every
    # middleware and answer an oversized Content-Length in plain text before DeclaredLengthLimit could.
    app.add_middleware(DeclaredLengthLimit, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(413, lambda request, error: too_large(settings.max_body_bytes))
    app.include_router(router, max_body_size=settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


@asynccontextmanager
async def lifespan(app: FastAPI):
    from digitocr.reading import Recognizer

    settings = app.state.settings
    # Under torch (the server's extra installs it): the model card comes from the model file.
    app.state.recognizer = Recognizer(
        settings.model_path, settings.device, backend="torch", config=ReadingConfig(max_pixels=settings.max_pixels)
    )
    app.state.batcher = ReadBatcher(app.state.recognizer)
    app.state.card = model_card(app.state.recognizer)
    yield


async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings  # async: a plain def would cost a trip through the thread pool


async def request_picture(request: Request, settings: ServeSettings = Depends(get_settings)) -> bytes:
    return await picture_bytes(request, settings.max_body_bytes)


router = APIRouter()


@router.get("/", include_in_schema=False)
def page():
    return FileResponse(STATIC / "index.html")


@router.post(
    "/api/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=ERRORS,
    openapi_extra=PREDICT_BODY,
)
async def predict(request: Request, data: bytes = Depends(request_picture), probabilities: bool = False):
    """Read the digits in a picture: the JSON of `digitocr predict --json`, without "file"."""
    result = await request.app.state.batcher.read(data)  # decoded and read in a worker thread, off the loop
    answer = result.to_dict()
    if probabilities:  # all ten, for the page's bars; a line's digits are the same digits, so they get them too
        entries = answer["digits"] + [entry for line in answer["lines"] for entry in line["digits"]]
        readings = result.digits + [digit for line in result.lines for digit in line.digits]
        for entry, digit in zip(entries, readings):
            entry["probabilities"] = [round(p, 6) for p in digit.probabilities.tolist()]
    # Built by our own code, so it is sent as it is: validating it again against PredictResponse (which still
    # documents it in the OpenAPI schema) would cost every request a pass through pydantic.
    return JSONResponse(answer)


@router.get("/api/health", response_model=Health, responses={503: {"model": ErrorDetail}})
def health(request: Request, settings: ServeSettings = Depends(get_settings)):
    if getattr(request.app.state, "recognizer", None) is None:
        return JSONResponse({"detail": "the model is not loaded"}, status_code=503)
    return Health(status="ok", model=request.app.state.recognizer.model_label)


@router.get("/api/model", response_model=ModelCard)
def model(request: Request):
    return request.app.state.card


def model_card(recognizer) -> ModelCard:
    model_file = recognizer.backend.model_file
    metrics = model_file.metadata.get("metrics") or {}
    return ModelCard(
        name=recognizer.model_label,
        path=str(recognizer.model_path),
        architecture=model_file.config.model.name,
        model=asdict(model_file.config.model),
        parameters=sum(p.numel() for p in model_file.model.parameters()),
        test_accuracy=metrics.get("test_accuracy"),
        val_accuracy=metrics.get("val_accuracy"),
        trained=model_file.metadata.get("created"),
        data_sha256=model_file.metadata.get("data_sha256"),
        weights_sha256=model_file.metadata.get("weights_sha256"),
        versions=model_file.metadata.get("versions") or {},
    )
