"""The HTTP routes, one router per resource (FastAPI's "bigger applications" layout). Each
route parses its input, calls one method of the core and returns its JSON; the Service
reaches it through the `ServiceDep` dependency."""
