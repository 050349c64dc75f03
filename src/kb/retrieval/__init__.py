"""Retrieval: dense (the vector store), keyword (FTS5 in the manifest) and their fusion."""
