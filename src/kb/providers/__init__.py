"""Providers: `complete(request) -> Completion`. Resilience wrappers share the interface."""
