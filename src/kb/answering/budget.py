"""How much of a model's context a text takes, estimated without its tokenizer: the prompt
and the condensed-question request both fit their parts to a budget with it."""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5  # conservative for English; keeps estimates above real counts


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)
