"""The peer of benchmarks/serve.py: the search service a user writes in thirty lines instead of
running kb serve. One synchronous FastAPI endpoint (FastAPI runs it in its thread pool):
sentence-transformers encodes the query, chromadb's PersistentClient searches a copy of
kb's Chroma folder. Served by uvicorn, one process.

    PEER_MODEL=... PEER_CHROMA=... PEER_COLLECTION=... uvicorn benchmarks.serve_peer:app

PEER_THREADS sets the size of the thread pool (AnyIO's default is 40).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import chromadb
from anyio import to_thread
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(os.environ["PEER_MODEL"], device="cpu")
collection = chromadb.PersistentClient(os.environ["PEER_CHROMA"]).get_collection(
    os.environ["PEER_COLLECTION"], embedding_function=None
)


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    to_thread.current_default_thread_limiter().total_tokens = int(os.environ.get("PEER_THREADS", "40"))
    yield


app = FastAPI(lifespan=lifespan)


class Search(BaseModel):
    query: str
    k: int = 5


@app.post("/v1/search")
def search(body: Search) -> dict:
    vector = model.encode([body.query], normalize_embeddings=True)
    res = collection.query(query_embeddings=vector, n_results=body.k)
    return {
        "hits": [
            {"id": i, "text": text, "distance": distance}
            for i, text, distance in zip(res["ids"][0], res["documents"][0], res["distances"][0], strict=True)
        ]
    }


@app.get("/readyz")
def ready() -> dict:
    return {"ok": True}
