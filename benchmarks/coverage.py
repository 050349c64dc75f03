"""How many word pieces each pipeline hands the model on the 1,000-note corpus of target 2b:
kb's chunks, LlamaIndex with its defaults (nodes longer than the 256-piece window are
truncated by the model) and LlamaIndex at equal coverage. Tokenizer only, no model.

    python benchmarks/coverage.py [--notes 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from corpus import notes_corpus  # noqa: E402
from run import _chunk_texts  # noqa: E402

WINDOW = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=1000)
    args = parser.parse_args()
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from tokenizers import Tokenizer

    from kb.config import load_settings
    from kb.embedding import model_dir

    with tempfile.TemporaryDirectory(prefix="kb-coverage-") as tmp:
        folder = Path(tmp) / "notes"
        notes_corpus(folder, args.notes)
        settings = load_settings(home=str(Path(tmp) / "home"))
        tok = Tokenizer.from_file(str(model_dir(settings) / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()

        def pieces(text: str) -> int:
            return len(tok.encode(text).ids)  # with [CLS] and [SEP], as the model reads it

        kb = [min(pieces(t), WINDOW) for t in _chunk_texts(settings, folder)]
        print(f"kb: {len(kb)} chunks, {sum(kb)} pieces embedded, {sum(kb) / len(kb):.1f} per chunk")
        docs = SimpleDirectoryReader(str(folder), recursive=True).load_data()
        splitters = {
            "defaults": SentenceSplitter(),
            "equal coverage": SentenceSplitter(
                chunk_size=200,
                chunk_overlap=32,
                include_metadata=False,
                tokenizer=lambda t: tok.encode(t, add_special_tokens=False).ids,
            ),
        }
        for name, splitter in splitters.items():
            full = [pieces(n.get_content(MetadataMode.EMBED)) for n in splitter.get_nodes_from_documents(docs)]
            embedded = sum(min(p, WINDOW) for p in full)
            print(
                f"LlamaIndex {name}: {len(full)} nodes, {embedded} pieces embedded of {sum(full)} "
                f"({sum(p > WINDOW for p in full)} nodes truncated); kb embeds {sum(kb) / embedded:.2f}x as many"
            )


if __name__ == "__main__":
    main()
