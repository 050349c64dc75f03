"""Vector stores: add / query / delete / count. Chroma is the one we ship."""
