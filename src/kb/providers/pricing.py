"""Prices and context windows of common OpenAI models, for cost and prompt budgets.

Prices in USD per million tokens (input, output), from OpenAI's published API pricing;
a provider's own `input_cost_per_mtok` / `output_cost_per_mtok` settings take precedence.
"""

from __future__ import annotations

PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

CONTEXT_TOKENS: dict[str, int] = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "gpt-3.5-turbo": 16_385,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
}
DEFAULT_CONTEXT_TOKENS = 8192


def _lookup(table: dict, model: str):
    # Dated snapshots ("gpt-4o-2024-08-06") share their family's figures; longest prefix wins.
    for name in sorted(table, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            return table[name]
    return None


def price(model: str, input_per_mtok: float | None, output_per_mtok: float | None) -> tuple[float, float] | None:
    if input_per_mtok is not None or output_per_mtok is not None:
        return (input_per_mtok or 0.0, output_per_mtok or 0.0)
    return _lookup(PRICES, model)


def context_tokens(model: str, configured: int | None) -> int:
    return configured or _lookup(CONTEXT_TOKENS, model) or DEFAULT_CONTEXT_TOKENS


def cost(prices: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float | None:
    if prices is None:
        return None
    return round((input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000, 8)
