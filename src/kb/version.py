"""kb's version, in one place (the package, the HTTP API, webhooks' User-Agent and `kb --version` read it)."""

__version__ = "0.1.0"
