"""Monitoring: events appended to SQLite, and the figures `kb stats` derives from them."""
