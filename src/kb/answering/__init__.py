"""Answering: validate → retrieve → prompt → generate → verify citations."""
