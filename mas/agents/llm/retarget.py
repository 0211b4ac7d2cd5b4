"""Pointing a scenario's LLM agents at another model, a server, or a recorded run.

The scenario file names a backend per agent; the command line can override all of them at
once (`mas run --llm-url ... --llm-model ...`), which is how the same file runs on the
embedded model, a local model directory, or any OpenAI-compatible server. `mas replay`
uses the same switch with a replay backend to re-run a recorded run without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mas.agents.llm.config import LocalBackendConfig, OpenAIBackendConfig, ReplayBackendConfig
from mas.errors import MasError, ScenarioError

if TYPE_CHECKING:
    from mas.scenario import Scenario


def backend_from_options(url: str | None, model: str | None, api_key_env: str | None) -> Any:
    """The backend config the command-line options describe, or None when none is given.

    `url` selects an OpenAI-compatible server (then `model` is required); `model` alone
    selects a local model directory or hub id.
    """
    if url:
        if not model:
            raise MasError("--llm-url needs --llm-model: the model name as the server knows it")
        if not url.startswith(("http://", "https://")):
            raise MasError(f"--llm-url: expected an http(s) address such as http://127.0.0.1:8000/v1, got '{url}'")
        return OpenAIBackendConfig(base_url=url, model=model, api_key_env=api_key_env)
    if api_key_env:
        raise MasError("--llm-api-key-env only applies to a server: give --llm-url too")
    if model:
        return LocalBackendConfig(model=model)
    return None


def with_backend(scenario: "Scenario", backend: Any) -> "Scenario":
    """The scenario with every LLM agent, and every narrator, on `backend`."""
    from mas.agents.llm.spec import LLMSpec

    agents = []
    for agent in scenario.agents:
        policy = agent.policy
        if isinstance(policy, LLMSpec):
            update: dict[str, Any] = {"backend": backend}
            if policy.narrator is not None and policy.narrator.backend is not None:
                update["narrator"] = policy.narrator.model_copy(update={"backend": backend})
            agent = agent.model_copy(update={"policy": policy.model_copy(update=update)})
        agents.append(agent)
    return scenario.model_copy(update={"agents": agents})


def has_llm_agents(scenario: "Scenario") -> bool:
    """Whether any agent of the scenario is played by a language model."""
    from mas.agents.llm.spec import LLMSpec

    return any(isinstance(agent.policy, LLMSpec) for agent in scenario.agents)


@dataclass(frozen=True)
class Replay:
    """What `mas replay` re-runs: the recorded scenario on a replay backend, its seed and
    its number of finished episodes."""

    scenario: "Scenario"
    seed: int
    episodes: int


def replay_of(run_dir: Path) -> Replay:
    """The recorded run in `run_dir`, ready to play again without any model."""
    from mas.scenario import parse_scenario
    from mas.store import RunStore

    with RunStore.open(run_dir) as store:
        meta = store.meta()
        episodes = len(store.episodes_done())
    try:
        scenario = parse_scenario(meta["scenario"], source=f"{run_dir} (recorded scenario)")
    except KeyError:
        raise ScenarioError(f"{run_dir}: the run store holds no scenario") from None
    if episodes == 0:
        raise MasError(f"{run_dir}: the run has no finished episode to replay")
    if not has_llm_agents(scenario):
        raise MasError(f"{run_dir}: the run has no LLM agents; run its scenario again with `mas run` instead")
    replayed = with_backend(scenario, ReplayBackendConfig(run=str(Path(run_dir))))
    return Replay(scenario=replayed, seed=int(meta["seed"]), episodes=episodes)
