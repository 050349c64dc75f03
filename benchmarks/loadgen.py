"""A closed-loop HTTP/1.1 load generator that costs little CPU, for benchmarks/serve.py.

Servers and load share this machine's two cores, so a heavy client takes CPU from the
server it measures: httpx's AsyncClient spent about 5 ms of CPU per request here, as much as
a whole kb search. This one writes each request on a kept-alive connection per client and
reads the answer by its Content-Length, about 0.1 ms a request; it reports its own CPU time
so a reader can check. Loopback only, bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Request = tuple[str, str, Any]  # method, path, JSON body (None: no body)
DEADLINE_S = 120  # per measurement: the run stops by itself


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, request: Request) -> int:
    method, path, body = request
    payload = b"" if body is None else json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()  # fmt: skip
    writer.write(head + payload)
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" not in headers:
        raise RuntimeError(f"{path}: an answer without Content-Length ({headers.get('transfer-encoding')})")
    await reader.readexactly(int(headers["content-length"]))
    return status


async def measure(url: str, clients: int, total: int, make_request: Callable[[], Request]) -> dict[str, Any]:
    """`total` requests from `clients` connections, each sending its next request when the
    last is answered: throughput, latency percentiles, errors, and this process's CPU."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.monotonic() + DEADLINE_S

    async def client() -> None:
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while issued < total and time.monotonic() < deadline:
                issued += 1
                request = make_request()
                started = time.perf_counter()
                status = await _exchange(reader, writer, f"{host}:{port}", request)
                latencies.append(time.perf_counter() - started)
                errors += status != 200
        finally:
            writer.close()

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    pct = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"clients": clients, "requests": len(latencies), "errors": errors, "seconds": round(wall, 2),
            "throughput": round(len(latencies) / wall, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
            "client_cpu_ms": round((time.process_time() - cpu) * 1000 / max(1, len(latencies)), 3)}  # fmt: skip
