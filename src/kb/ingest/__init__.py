"""Ingestion: discover → read → chunk → embed → store, with a manifest for incremental runs."""
