"""mas: multi-agent simulation where scenario files become PettingZoo environments in
which LLM, RL and scripted agents talk along a communication graph and play.

`import mas` stays light (no torch, transformers or matplotlib); the parts that need them
import them when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_scenario", "make_env", "make_aec_env", "make_gym_env", "run", "load_run", "__version__"]

if TYPE_CHECKING:
    from mas.env import make_aec_env, make_env
    from mas.gym_env import make_gym_env
    from mas.runner import run
    from mas.scenario import load_scenario


def __getattr__(name: str) -> Any:
    # lazy so that `import mas` does not pull in pettingzoo, pandas or the games
    if name == "load_scenario":
        from mas.scenario import load_scenario

        return load_scenario
    if name in ("make_env", "make_aec_env"):
        from mas import env

        return getattr(env, name)
    if name == "make_gym_env":
        from mas.gym_env import make_gym_env

        return make_gym_env
    if name == "run":
        from mas.runner import run

        return run
    if name == "load_run":
        from mas.analysis.load import load_run

        return load_run
    raise AttributeError(f"module 'mas' has no attribute {name!r}")
