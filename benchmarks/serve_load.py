"""Load test of `digitocr serve`: many concurrent clients posting a canvas-sized picture on loopback.

Starts the real server (uvicorn) in its own process, sends --requests POST /api/predict from --clients
concurrent keep-alive connections, and prints throughput, p50/p90/p99 latency and the error count. As a
baseline it first times the server's own work in-process (decode the picture, Recognizer.read; no HTTP, one
thread), so the ratios show what HTTP, multipart parsing and concurrency cost or gain.

    python benchmarks/serve_load.py --model trained_model.pth [--requests 2000] [--clients 16]

The load generator is a few lines of raw asyncio HTTP/1.1 rather than an HTTP library, so that on a small
machine the client's own CPU use disturbs the server as little as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import json
import math
import os
import platform
import statistics
import sys
import time

from PIL import Image, ImageDraw

from digitocr.machine import cpu_name
from digitocr.testing.server import running_server

BOUNDARY = "digitocr-benchmark"


def canvas_picture(size: int = 112) -> bytes:
    """What the page sends: its 400x400 pad (white paper, a thick dark '0' filling about 70 % of the height)
    scaled down to ``size`` pixels with smoothing, as the page does before sending (SEND_SIZE in app.js)."""
    picture = Image.new("RGB", (400, 400), "white")
    points = [(200 + 88 * math.sin(t * math.pi / 12), 200 - 132 * math.cos(t * math.pi / 12)) for t in range(25)]
    ImageDraw.Draw(picture).line(points, fill=(17, 17, 17), width=31, joint="curve")
    if size != 400:
        picture = picture.resize((size, size), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def multipart_request(png: bytes) -> bytes:
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="pad.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
        f"boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def in_process_baseline(model: str, png: bytes, repeats: int) -> dict:
    from digitocr.reading import Recognizer
    from digitocr.reading.parallel import limit_threads

    limit_threads(1)  # as the server runs it
    recognizer = Recognizer(model)
    timings = []
    for _ in range(repeats + 1):  # the first one warms up
        started = time.perf_counter()
        answer = recognizer.read(png)  # the server's work, without HTTP
        timings.append(time.perf_counter() - started)
    timings = timings[1:]
    return {
        "answer": answer.to_dict(),
        "p50_ms": 1000 * statistics.median(timings),
        "per_second": repeats / sum(timings),
    }


def same_reading(answer: dict, expected: dict) -> bool:
    """The same digits in the same boxes; confidences equal to 1e-5 (a batch may round their last bits apart)."""
    digits, wanted = answer.get("digits", []), expected["digits"]
    return (
        answer.get("text") == expected["text"]
        and len(digits) == len(wanted)
        and all(
            d["digit"] == w["digit"] and d["box"] == w["box"] and abs(d["confidence"] - w["confidence"]) < 1e-5
            for d, w in zip(digits, wanted)
        )
    )


async def client(
    port: int, request: bytes, expected: dict, todo: list[int], latencies: list[float], errors: list[str]
) -> None:
    """One keep-alive connection sending requests while any are left; reconnects after an error."""
    connection = None
    while todo[0] > 0:
        todo[0] -= 1
        started = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200") or not same_reading(json.loads(body), expected):
                errors.append(head.split(b"\r\n")[0].decode() + " " + body[:100].decode(errors="replace"))
        except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError) as error:
            errors.append(f"{type(error).__name__}: {error}")
            connection = None
            continue
        latencies.append(time.perf_counter() - started)
    if connection is not None:
        connection[1].close()


async def load(port: int, request: bytes, expected: dict, requests: int, clients: int) -> tuple[list, list, float]:
    latencies, errors, todo = [], [], [requests]
    started = time.perf_counter()
    await asyncio.gather(*(client(port, request, expected, todo, latencies, errors) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="trained_model.pth", help="a model file (default trained_model.pth)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--size",
        type=int,
        default=112,
        help="side of the pad picture sent: 112 is what the page sends (default), 400 the full pad",
    )
    parser.add_argument(
        "--url",
        help="load a server that is already running (e.g. one started with other "
        "uvicorn options) instead of starting `digitocr serve`",
    )
    args = parser.parse_args()
    if not os.path.isfile(args.model):
        sys.exit(f"no model at {args.model}: make one with `digitocr train`, or pass --model PATH")

    png = canvas_picture(args.size)
    baseline = in_process_baseline(args.model, png, repeats=200)
    request = multipart_request(png)
    with contextlib.nullcontext(args.url) if args.url else running_server(args.model) as base:
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        asyncio.run(load(port, request, baseline["answer"], requests=4 * args.clients, clients=args.clients))  # warm-up
        latencies, errors, seconds = asyncio.run(load(port, request, baseline["answer"], args.requests, args.clients))

    throughput = len(latencies) / seconds
    p50, p90, p99 = (1000 * percentile(latencies, share) for share in (0.5, 0.9, 0.99))
    print(
        f"digitocr serve under load, {datetime.date.today()}, {cpu_name()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"picture: {len(png):,}-byte {args.size}x{args.size} PNG"
        f"{' (what the page sends)' if args.size == 112 else ''}, multipart POST /api/predict"
    )
    print(
        f"in-process decode + Recognizer.read (baseline): {baseline['p50_ms']:.2f} ms p50, "
        f"{baseline['per_second']:.0f} /s on one thread"
    )
    print(f"server: {args.requests} requests from {args.clients} concurrent clients in {seconds:.2f} s")
    print(f"  throughput {throughput:.0f} requests/s ({throughput / baseline['per_second']:.2f}x the in-process rate)")
    print(
        f"  latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {1000 * max(latencies):.1f} ms "
        f"(p50 is {p50 / baseline['p50_ms']:.1f}x the in-process read)"
    )
    print(f"  errors {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
