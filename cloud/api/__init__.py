"""The cloud's REST API: read-only views of gateways, sensors, readings, gaps, alerts, dead letters.

Wire it into a service with ``create_app(engine, load_tokens(config.api.tokens_file))``
and serve the result with uvicorn.
"""

from __future__ import annotations

from coldgate.cloud.api.app import create_app
from coldgate.cloud.api.auth import ApiTokens, load_tokens

__all__ = ["ApiTokens", "create_app", "load_tokens"]
