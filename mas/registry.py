"""Explicit registries: name -> "module:attribute", imported only when used.

Scenario files name games, policies and topologies by these names and never name Python
code, so a scenario cannot run arbitrary code. An unknown name lists the valid ones.

Plugins: installed packages add games, policies, LLM backends and metrics through Python
entry points, one group each (`PLUGIN_GROUPS`). They are merged into these registries on
first use (`load_plugins`), by name only: a plugin's module is imported when it is used.
A plugin whose name clashes with a built-in (or another plugin), or whose module does not
import, is a one-line `PluginError`. What each entry point names:

- `mas.games`: the game class; its `config_model` attribute is its config model, whose
  `kind` literal is the entry point's name.
- `mas.policies`: the policy class; its `spec_model` attribute is its spec model, whose
  `type` literal is the entry point's name.
- `mas.backends`: an LLM backend config model (`kind` literal = the name) with a
  `create()` method returning the live `LLMBackend`.
- `mas.metrics`: a function `run -> float | None` (a `mas.analysis.load.Run`); its value
  joins the run's overview metrics under the entry point's name.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any

from mas.errors import MissingExtraError, PluginError, UnknownNameError

#: game kind -> (config model, game class)
GAMES: dict[str, tuple[str, str]] = {
    "normal_form": ("mas.games.normal_form:NormalFormConfig", "mas.games.normal_form:NormalFormGame"),
    "public_goods": ("mas.games.public_goods:PublicGoodsConfig", "mas.games.public_goods:PublicGoodsGame"),
    "commons": ("mas.games.commons:CommonsConfig", "mas.games.commons:CommonsGame"),
    "bargaining": ("mas.games.bargaining:BargainingConfig", "mas.games.bargaining:BargainingGame"),
    "signalling": ("mas.games.signalling:SignallingConfig", "mas.games.signalling:SignallingGame"),
    "private_signals": ("mas.games.private_signals:PrivateSignalsConfig", "mas.games.private_signals:PrivateSignalsGame"),
    "volunteers_dilemma": ("mas.games.volunteer:VolunteerConfig", "mas.games.volunteer:VolunteerGame"),
    "grid": ("mas.games.grid:GridConfig", "mas.games.grid:GridGame"),
    "guess_two_thirds": ("mas.games.guess_two_thirds:GuessTwoThirdsConfig", "mas.games.guess_two_thirds:GuessTwoThirdsGame"),
}

#: policy type -> (spec model, policy class, optional extra that provides it); scripted
#: strategies live in mas.agents.scripted.<family>
POLICIES: dict[str, tuple[str, str, str | None]] = {
    name: (f"mas.agents.scripted.{family}:{cls}Spec", f"mas.agents.scripted.{family}:{cls}", None)
    for name, (family, cls) in {
        "always_cooperate": ("dilemma", "AlwaysCooperate"),
        "always_defect": ("dilemma", "AlwaysDefect"),
        "random": ("any_game", "RandomPolicy"),
        "tit_for_tat": ("dilemma", "TitForTat"),
        "tit_for_two_tats": ("dilemma", "TitForTwoTats"),
        "generous_tit_for_tat": ("dilemma", "GenerousTitForTat"),
        "grim_trigger": ("dilemma", "GrimTrigger"),
        "pavlov": ("dilemma", "Pavlov"),
        "suspicious_tit_for_tat": ("dilemma", "SuspiciousTitForTat"),
        "alternator": ("dilemma", "Alternator"),
        "defect_once": ("dilemma", "DefectOnce"),
        "joss": ("dilemma", "Joss"),
        "tester": ("dilemma", "Tester"),
        "fixed_action": ("any_game", "FixedAction"),
        "conditional_cooperator": ("public_goods", "ConditionalCooperator"),
        "free_rider": ("public_goods", "FreeRider"),
        "fixed_quota": ("commons", "FixedQuota"),
        "sustainable_harvester": ("commons", "SustainableHarvester"),
        "fair_bargainer": ("bargaining", "FairBargainer"),
        "greedy_bargainer": ("bargaining", "GreedyBargainer"),
        "honest_speaker": ("signalling", "HonestSpeaker"),
        "literal_listener": ("signalling", "LiteralListener"),
        "signal_teller": ("private_signals", "SignalTeller"),
    }.items()
}
# the spec is light (pydantic only); the model loads when the policy first acts
POLICIES["llm"] = ("mas.agents.llm.spec:LLMSpec", "mas.agents.llm.policy:LLMPolicy", None)
# RL: learner specs are light (no torch); `mas train` trains them, `checkpoint` plays the result
POLICIES["iql"] = ("mas.agents.rl.config:IQLSpec", "mas.agents.rl.config:IQLLearner", None)
POLICIES["mappo"] = ("mas.agents.rl.config:MAPPOSpec", "mas.agents.rl.config:MAPPOLearner", None)
POLICIES["checkpoint"] = ("mas.agents.rl.config:CheckpointSpec", "mas.agents.rl.policy:CheckpointPolicy", "rl")
# any strategy of the axelrod library, by name (the spec imports axelrod only to check the name)
POLICIES["axelrod"] = ("mas.agents.axelrod_policy:AxelrodSpec", "mas.agents.axelrod_policy:AxelrodPolicy", "axelrod")


#: LLM backend kind -> backend config model (built-ins live in mas.agents.llm.config)
BACKENDS: dict[str, str] = {}
BUILTIN_BACKENDS = frozenset({"local", "openai", "replay"})
#: overview metric name -> function of a run (plugins only: built-in metrics are mas.analysis.summary's)
METRICS: dict[str, str] = {}

#: entry point group -> (what it registers, the registry it joins)
PLUGIN_GROUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "mas.games": ("game", GAMES), "mas.policies": ("policy", POLICIES),
    "mas.backends": ("backend", BACKENDS), "mas.metrics": ("metric", METRICS),
}
_BUILTIN = {"mas.games": frozenset(GAMES), "mas.policies": frozenset(POLICIES), "mas.backends": BUILTIN_BACKENDS}
#: "module:attr" targets that come from plugins -> "<distribution> plugin <group> <name>"
PLUGIN_TARGETS: dict[str, str] = {}
_plugins_loaded = False


def load_plugins() -> None:
    """Merge every installed plugin's entry points into the registries (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for group, (what, table) in PLUGIN_GROUPS.items():
        for point in sorted(entry_points(group=group), key=lambda p: p.name):
            dist = point.dist.name if point.dist is not None else "?"
            origin = f"plugin {what} '{point.name}' ({group} entry point of {dist})"
            if point.name in _BUILTIN.get(group, ()):
                raise PluginError(f"{origin} clashes with the built-in {what} of that name; rename it")
            if point.name in table:
                raise PluginError(f"{origin} clashes with another plugin's {what} of that name: {PLUGIN_TARGETS.get(_first(table[point.name]), '?')}")
            target = point.value.replace(" ", "")
            PLUGIN_TARGETS[target] = origin
            if group == "mas.games":
                table[point.name] = (f"{target}.config_model", target)
                PLUGIN_TARGETS[f"{target}.config_model"] = origin
            elif group == "mas.policies":
                table[point.name] = (f"{target}.spec_model", target, None)
                PLUGIN_TARGETS[f"{target}.spec_model"] = origin
            else:
                table[point.name] = target


def _first(entry: Any) -> str:
    return entry[0] if isinstance(entry, tuple) else entry


def load_attr(target: str, extra: str | None = None) -> Any:
    """Import "module:attr" (attr may be dotted); a missing optional dependency names the
    extra to install, a plugin that does not load is a one-line PluginError."""
    if target in PLUGIN_TARGETS:
        try:
            return _load(target, extra)
        except Exception as exc:  # any failure of third-party code: say whose, in one line
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PluginError(f"{PLUGIN_TARGETS[target]} does not load ({target}): {type(exc).__name__}"
                              f"{': ' + reason if reason else ''}") from None
    return _load(target, extra)


def _load(target: str, extra: str | None) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if extra and exc.name and not exc.name.startswith("mas"):
            raise MissingExtraError(f"{target} needs the '{exc.name}' package: pip install 'mas-sim[{extra}]'") from None
        raise
    return functools.reduce(getattr, attr.split("."), module) if attr else module


def doc_line(target: str) -> str:
    """First line of the docstring of "module:attr" (a class or function; "module" alone: the
    module's), read from the source without importing it: `mas list` stays fast although
    some policy modules import torch."""
    module_name, _, attr = target.partition(":")
    tree = _module_source_tree(module_name)
    node: Any = tree
    if tree is not None and attr:
        node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == attr), None)
    if node is None:  # no source, or the name is bound some other way: import it after all
        obj = load_attr(target) if attr else importlib.import_module(module_name)
        doc = obj.__doc__ or ""
    else:
        doc = ast.get_docstring(node) or ""
    lines = doc.strip().splitlines()
    return lines[0].strip() if lines else ""


@functools.lru_cache(maxsize=None)
def _module_source_tree(module_name: str) -> ast.Module | None:
    """The parsed source of a module (many policies share one), or None without a source."""
    try:
        if module_name.startswith("mas."):  # read our own sources by path: find_spec would import parent packages
            base = Path(__file__).resolve().parent.joinpath(*module_name.split(".")[1:])
            path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            return ast.parse(path.read_text(encoding="utf-8"))
        spec = importlib.util.find_spec(module_name)
        return ast.parse(Path(spec.origin).read_text(encoding="utf-8")) if spec and spec.origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        return None


def suggest(name: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(what: str, name: str, known: list[str]) -> UnknownNameError:
    """An error naming the unknown `name` and listing the known ones."""
    return UnknownNameError(f"unknown {what} '{name}'{suggest(name, known)}; known: {', '.join(sorted(known))}")


def game_config_model(kind: str) -> type:
    load_plugins()
    if kind not in GAMES:
        raise unknown("game", kind, list(GAMES))
    return _checked_model(GAMES[kind][0], "kind", kind)


def make_game(config: Any, n_agents: int) -> Any:
    """Build the game object for a validated game config."""
    load_plugins()
    if config.kind not in GAMES:
        raise unknown("game", config.kind, list(GAMES))
    return load_attr(GAMES[config.kind][1])(config, n_agents)


def policy_spec_model(name: str) -> type:
    load_plugins()
    if name not in POLICIES:
        raise unknown("policy", name, list(POLICIES))
    spec, _, extra = POLICIES[name]
    return _checked_model(spec, "type", name, extra)


def policy_class(name: str) -> type:
    load_plugins()
    if name not in POLICIES:
        raise unknown("policy", name, list(POLICIES))
    _, cls, extra = POLICIES[name]
    return load_attr(cls, extra)


def backend_config_models() -> tuple[type, ...]:
    """The plugins' LLM backend config models (the built-ins are in mas.agents.llm.config)."""
    load_plugins()
    return tuple(_checked_model(target, "kind", kind) for kind, target in BACKENDS.items())


def metric_functions() -> dict[str, Any]:
    """The plugins' metrics: overview name -> function of a run."""
    load_plugins()
    return {name: load_attr(target) for name, target in METRICS.items()}


def _checked_model(target: str, tag: str, name: str, extra: str | None = None) -> type:
    """A config model whose `tag` field (the union discriminator) must default to `name`."""
    model = load_attr(target, extra)
    if target in PLUGIN_TARGETS:
        field = getattr(model, "model_fields", {}).get(tag)
        if field is None or field.default != name:
            raise PluginError(f"{PLUGIN_TARGETS[target]}: {target} must be a pydantic model with "
                              f"`{tag}: Literal['{name}'] = '{name}'`")
    return model


def scenario_dirs() -> list[Path]:
    """Where built-in scenarios live: `mas/scenarios/` inside the installed package.

    Found through importlib.resources, so a wheel install finds the same files as a checkout
    (the repository's top-level `scenarios` is a symlink to this folder).
    """
    root = resources.files("mas") / "scenarios"
    # a regular package on disk (wheel or editable install) gives a real directory; a package
    # imported from a zip archive has no files to open by path, hence no built-ins
    return [root] if isinstance(root, Path) and root.is_dir() else []


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario name -> file."""
    return _yaml_files(scenario_dirs())


def builtin_tournaments() -> dict[str, Path]:
    """Built-in tournament name -> file (`mas/scenarios/tournaments/`)."""
    return _yaml_files([d / "tournaments" for d in scenario_dirs()])


def _yaml_files(directories: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found
