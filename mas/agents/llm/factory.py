"""Scenario backend configs -> live backends, one per distinct config per process.

Loading a model is the expensive part, so every policy (and every agent) whose scenario
names the same backend config shares one live backend. Replay backends are the exception:
each holds a cursor into a recorded run, so every call gets a fresh one.
"""

from __future__ import annotations

import threading

from mas.agents.llm.backend import LLMBackend
from mas.agents.llm.config import (
    BackendConfig,
    LocalBackendConfig,
    OpenAIBackendConfig,
    ReplayBackendConfig,
)

_LIVE: dict[object, LLMBackend] = {}
_LOCK = threading.Lock()


def get_backend(config: BackendConfig) -> LLMBackend:
    """The live backend for `config` (created on first use, then shared)."""
    if isinstance(config, ReplayBackendConfig):
        from mas.agents.llm.wrappers import ReplayBackend

        return ReplayBackend(config.run)
    with _LOCK:
        if config not in _LIVE:
            _LIVE[config] = _create(config)
        return _LIVE[config]


def _create(config: BackendConfig) -> LLMBackend:
    if isinstance(config, LocalBackendConfig):
        from mas.agents.llm.local import TransformersBackend
        from mas.agents.llm.models import load_model

        return TransformersBackend(load_model(config.model, config.device, config.dtype, config.adapter))
    if isinstance(config, OpenAIBackendConfig):
        from mas.agents.llm.http import OpenAIBackend

        return OpenAIBackend(config)
    create = getattr(config, "create", None)
    if callable(create):  # a plugin's backend config builds its own backend
        return create()
    raise TypeError(f"unknown backend config {type(config).__name__}")


def clear_caches() -> None:
    """Make every live backend compute as if freshly started (see `LLMBackend.clear_cache`)."""
    with _LOCK:
        for backend in _LIVE.values():
            backend.clear_cache()


def close_all() -> None:
    """Close and forget every live backend (tests, and processes that finish)."""
    with _LOCK:
        for backend in _LIVE.values():
            backend.close()
        _LIVE.clear()
