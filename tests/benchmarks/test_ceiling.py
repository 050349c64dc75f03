"""benchmarks/ceiling.py's count of the encoder's work, against torch's own FLOP counter
running kb's torch forward pass over the packaged model."""

from __future__ import annotations

import json

from benchmarks import ceiling
from kb.config import load_settings
from kb.embedding import model_dir
from kb.embedding.bert import BertModelFiles
from kb.embedding.torch_bert import TorchBertEmbedder


def test_forward_flops_match_torchs_count_of_the_real_forward_pass(tmp_path):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    path = model_dir(load_settings(home=str(tmp_path / "home")))
    config = json.loads((path / "config.json").read_text())
    dims = (config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"])
    texts = ["bees", "a hive keeps its honey in wax cells", "queen " * 40]
    encoder = TorchBertEmbedder(path, "test", "float32")
    lengths = [sum(e.attention_mask) for e in BertModelFiles(path).tokenizer.encode_batch(texts)]
    # The math backend computes attention with matrix products torch can count (its fused CPU
    # kernel is not in the counter's table).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        encoder.embed(texts)  # one batch: kb pads it to its longest text
    counted, padded = ceiling.batched_flops(lengths, 32, True, dims)
    assert padded == 3 * max(lengths)
    # torch counts the weight products and attention; the element-wise rest is left out by both
    assert counter.get_total_flops() == counted
