"""A real browser for the web page's tests: Debian's chromium, driven by Playwright for
Python (its own browser download cannot work here; `make system-deps` installs chromium).

Chromium is not Python, so the loopback net of tests/net does not hold it. Three things do:
flags that stop its own background traffic (updates, sync, safe browsing...), a host
resolver that finds no name but 127.0.0.1, and a route on every page that lets through only
requests to 127.0.0.1 (and the page's own data: and blob: URLs), aborting and recording any
other. A test then asserts that nothing was recorded, and that the console showed no error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SIZES = {"wide": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return (f"the browser tests need Debian's chromium at {CHROMIUM}: `make system-deps` installs it "
                "(as root; else `sudo apt-get install chromium`)")  # fmt: skip
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the browser tests need the playwright package: pip install -e '.[dev]' (never `playwright install`)"
    return None


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


@dataclass
class Watched:
    """A page, and what it did that a test must see: requests beyond 127.0.0.1, console errors."""

    page: Any
    shots: Path
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect_console(self, pattern: str) -> None:
        """A console error this test causes on purpose (a refused token's 401)."""
        self.expected.append(pattern)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(re.search(p, e) for p in self.expected)]

    def shot(self, name: str, full_page: bool = False) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def fits(self) -> bool:
        """Nothing wider than the viewport: no sideways scrolling at a phone's width."""
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob") or (parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1")


def watched_page(browser: Any, shots: Path, size: str = "wide", scheme: str = "light") -> Watched:
    context = browser.new_context(viewport=SIZES[size], color_scheme=scheme, locale="en-GB", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(15_000)
    shots.mkdir(parents=True, exist_ok=True)
    seen = Watched(page, shots)

    def route(route: Any) -> None:
        if _local(route.request.url):
            route.continue_()
        else:
            seen.outside.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and seen.errors.append(message.text))
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    return seen
