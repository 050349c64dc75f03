"""Settings: a typed tree (settings.py) and how it is loaded and checked (loading.py).

Precedence, highest first: explicit overrides (CLI flags) > environment (`KB_*`) >
`$KB_HOME/config.toml` > defaults.
"""

from kb.config.loading import default_home, load_settings
from kb.config.settings import (
    BreakerSettings,
    EmbeddingSettings,
    ProviderSettings,
    RerankerSettings,
    Settings,
    WebhookSettings,
)

__all__ = [
    "BreakerSettings",
    "EmbeddingSettings",
    "ProviderSettings",
    "RerankerSettings",
    "Settings",
    "WebhookSettings",
    "default_home",
    "load_settings",
]
