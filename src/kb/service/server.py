"""`kb serve`: uvicorn running the app, with the safety rules checked before it binds.

Without KB_SERVE_TOKENS the server only listens on a loopback address: an unauthenticated
kb reachable from the network would hand out everyone's documents.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

from kb.config import Settings
from kb.errors import ConfigError

GRACEFUL_SHUTDOWN_S = 30  # in-flight requests get this long to finish on SIGTERM / Ctrl-C


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: Settings) -> None:
    if is_loopback(host) or any(t.strip() for t in os.environ.get("KB_SERVE_TOKENS", "").split(",")):
        return
    from kb.home import Home

    home = Home(settings)
    try:
        if home.tokens.all():
            return
    finally:
        home.close()
    raise ConfigError(
        f"refusing to listen on {host} without authentication: create a token (`kb tokens create NAME`), set "
        "KB_SERVE_TOKENS (comma-separated bearer tokens), or listen on 127.0.0.1"
    )


def app_factory() -> object:
    """The ASGI app for uvicorn's worker processes (settings come from the environment)."""
    from kb import logs
    from kb.config import load_settings
    from kb.service.app import create_app

    logs.configure(debug=os.environ.get("KB_DEBUG") == "1")
    return create_app(load_settings(), worker=os.environ.get("KB_SERVE_WORKER") == "1")


def share_cores(processes: int) -> int:
    """Gives each of `processes` server processes its share of the cores for its encoder (and
    torch's and BLAS's threads), through OMP_NUM_THREADS, which they inherit and kb's encoders
    read; a value the user set wins. Each process answers one batch of searches at a time (the
    GIL), so processes use the cores: on 2 cores, 2 processes of 2 threads served 133–198
    searches/s, of 1 thread 214–216, 1 process 158–164 (docs/benchmarks.md). Returns the
    threads each encoder will use."""
    from kb.concurrency import cpu_threads, process_share

    if not os.environ.get("OMP_NUM_THREADS", "").strip():
        os.environ["OMP_NUM_THREADS"] = str(process_share(processes))
    return cpu_threads()


def serve(
    settings: Settings, host: str, port: int, workers: int, worker: bool, log_level: str, note: Callable[[str], None]
) -> None:
    import uvicorn

    check_bind(host, settings)
    # Settings reach uvicorn's worker processes through the environment they inherit;
    # this is start-up, before anything reads it.
    os.environ["KB_HOME"] = str(settings.home)
    os.environ["KB_NAME"] = settings.kb
    os.environ["KB_SERVE_WORKER"] = "1" if worker else "0"
    if workers > 1:
        threads = share_cores(workers)
        note(f"{workers} server processes, each encoding with {threads} thread{'s' * (threads > 1)} (OMP_NUM_THREADS)")
    uvicorn.run(
        "kb.service.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        proxy_headers=True,
        server_header=False,
    )
