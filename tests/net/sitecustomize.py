"""Loaded at start-up by every Python process the tests start (conftest puts this folder first on
their PYTHONPATH): the loopback-only net of `loopback_only.py`."""

import loopback_only

loopback_only.install()
