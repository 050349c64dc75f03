"""kb: build and query knowledge bases from your own documents."""

__version__ = "0.1.0"
