"""Provider adapters: a folder per provider (`adapters/openai/`, `adapters/anthropic/`) behind the
Protocols of `adapters.base`, and the registry of them by name (`adapters.registry`).

Importing this package loads no SDK: an adapter's module is imported when its provider is built.
"""

from __future__ import annotations

from adapters.registry import REGISTRY, get_provider

__all__ = ["REGISTRY", "get_provider"]
