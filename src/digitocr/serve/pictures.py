"""Getting a picture out of a request: multipart field, JSON data URL / base64, or a raw image body.

``picture_bytes`` (async) only moves bytes; the reader opens them (``digitocr.reading.images``, in the
reading worker thread), refusing a decompression bomb from its header alone, before any pixel is unpacked.
"""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

ACCEPTED = 'multipart/form-data (field \'image\'), application/json ({"image": "<data URL or base64>"}) or image/*'


async def picture_bytes(request: Request, max_bytes: int) -> bytes:
    """The picture's encoded bytes; HTTPException 415 for a content type we do not take, 400 for a bad envelope."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=8, max_part_size=max_bytes)
        field = form.get("image")
        if isinstance(field, UploadFile):
            return await field.read()
        if isinstance(field, str):  # e.g. curl -F 'image=data:image/png;base64,...'
            return decode_base64(field)
        raise HTTPException(400, "no picture: the multipart form needs a file field named 'image'")
    if content_type == "application/json":
        # A bad envelope is 400, as for multipart, not 422: FastAPI's 422 is its validation of declared
        # parameters (detail a list of errors), and this body is parsed here, by hand.
        try:
            document = json.loads(await request.body())
        except RecursionError:  # json recurses once per [ or {, and gives up past the recursion limit (~1,000)
            raise HTTPException(400, "the JSON body is nested too deeply") from None
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, or an integer of over 4,300 digits
            raise HTTPException(400, f"the body is not valid JSON: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("image"), str):
            raise HTTPException(400, 'the JSON body must be an object {"image": "<data URL or base64 picture>"}')
        if not document["image"]:  # the schema's minLength 1 (app.py)
            raise HTTPException(400, 'the "image" string is empty: it must hold a picture (data URL or base64)')
        return decode_base64(document["image"])
    if content_type.startswith("image/"):
        return await request.body()
    raise HTTPException(415, f"unsupported content type {content_type or '(none)'!r}: send {ACCEPTED}")


def decode_base64(text: str) -> bytes:
    """A data URL ('data:image/png;base64,...') or bare base64 -> bytes; HTTPException 400 when it is neither."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise HTTPException(400, "the data URL must be base64-encoded (data:image/...;base64,...)")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "the picture is not valid base64") from None
