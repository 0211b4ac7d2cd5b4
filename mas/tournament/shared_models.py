"""LLM entrants in worker processes share one model through a model server.

An entrant whose LLM backend is `local` loads its model in every process that plays it:
with N workers that is N copies of the weights and N load times. Before the workers
start, the tournament loads each distinct local model once, in this process, serves it
with `mas.agents.llm.server.ModelServer` (the server behind `mas serve`) on 127.0.0.1 from
a background thread, and hands the workers a copy of the tournament whose local backends
point at that server. The stored tournament keeps the file's backends, so a resumed or
serial run plays the same entrants.

Not done for the serial backend (one process: nothing to share), nor for a Ray cluster
named by RAY_ADDRESS (other machines cannot reach 127.0.0.1): there, give the entrants an
`openai` backend on a server every node can reach.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: seconds a worker waits for one model call: many workers queue on one CPU model
SHARED_TIMEOUT_S = 600.0


def local_llm_backends(tournament_data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `local` backend config of the LLM entrants (policies and narrators), as dicts."""
    found = []
    for entrant in tournament_data["entrants"]:
        policy = entrant["policy"]
        if policy.get("type") != "llm":
            continue
        for config in (policy.get("backend"), (policy.get("narrator") or {}).get("backend")):
            if isinstance(config, dict) and config.get("kind", "local") == "local":
                found.append(config)
    return found


def should_share(tournament_data: dict[str, Any], backend: str) -> bool:
    """Whether matches run in several processes of this machine and an entrant loads a local model."""
    if backend == "serial" or (backend == "ray" and os.environ.get("RAY_ADDRESS")):
        return False
    return bool(local_llm_backends(tournament_data))


@contextmanager
def shared_models(tournament_data: dict[str, Any], backend: str) -> Iterator[tuple[dict[str, Any], list[Any]]]:
    """Serve each distinct local model once while the block runs.

    Yields:
        (the tournament data for the workers, the running `ModelServer`s); unchanged data
        and no servers when there is nothing to share.
    """
    if not should_share(tournament_data, backend):
        yield tournament_data, []
        return
    from mas.agents.llm.config import LocalBackendConfig
    from mas.agents.llm.factory import get_backend
    from mas.agents.llm.server import ModelServer

    servers: dict[str, Any] = {}
    try:
        for config in local_llm_backends(tournament_data):
            key = json.dumps(config, sort_keys=True)
            if key not in servers:
                model = get_backend(LocalBackendConfig(**config))  # loaded once, in this process
                servers[key] = ModelServer(model, f"mas-shared-{len(servers)}", port=0).start()
        yield _pointed_at(tournament_data, servers), list(servers.values())
    finally:
        for server in servers.values():
            server.stop()


def _pointed_at(tournament_data: dict[str, Any], servers: dict[str, Any]) -> dict[str, Any]:
    """A copy of the tournament whose local backends name the servers instead."""
    data = copy.deepcopy(tournament_data)

    def remote(config: Any) -> Any:
        if not isinstance(config, dict) or config.get("kind", "local") != "local":
            return config
        server = servers[json.dumps(config, sort_keys=True)]
        return {"kind": "openai", "base_url": f"{server.address}/v1", "model": server.model_name, "timeout": SHARED_TIMEOUT_S}

    for entrant in data["entrants"]:
        policy = entrant["policy"]
        if policy.get("type") != "llm":
            continue
        policy["backend"] = remote(policy.get("backend"))
        if policy.get("narrator") and policy["narrator"].get("backend") is not None:
            policy["narrator"]["backend"] = remote(policy["narrator"]["backend"])
    return data
