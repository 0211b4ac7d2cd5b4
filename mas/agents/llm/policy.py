"""The LLM policy: prompts become actions and messages, a whole step in one batched call.

Each step, for every agent it controls, the policy renders a prompt (rules, persona, round,
situation, own history, inbox; see `prompts` and `templates`) and asks its backend:

- `mode: score` (the default, suited to small models): the log-likelihood of each legal
  action's name as the start of the reply, all agents in one `score` call. A softmax with
  `temperature` turns them into a distribution, which is stored; the action is drawn from
  it (`choice: sample`) or is its most likely entry (`choice: argmax`). With `debias: true`
  every cyclic order of the listed options is scored and the distributions are averaged,
  because small models pick by position as much as by meaning. Scores that are not
  log-probabilities (NaN, infinite or positive: `Scores.problem`) never become a choice:
  the agent falls back, and the record says why (asking again would give the same scores).
- `mode: generate`: free text (optionally JSON), parsed into a legal action by
  `parsing.parse_action`. An invalid reply is answered with a correction and retried, up to
  `retries` times, in batched calls; then the policy falls back to `fallback_action` (or the
  first legal action). Every invalid reply and every fallback is counted and stored.

In talk steps (and in action steps with `talk_on_action_steps`) each agent writes a
message: generated text of at most `max_message_tokens` tokens, cut to the game's message
limit. Agents with a single legal action are not asked at all. An optional narrator
(`narrator`) retells each agent's situation in a story setting before it decides.

Every backend call is recorded in the agent's decision record (under "calls"), with the
prompt, raw output, parsed action, distribution and token counts, so the run store holds a
full transcript and a replay backend can re-run the run without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from mas.agents.base import AgentSetup, AgentView, Decision, Policy, render_message
from mas.agents.llm.backend import GenerateRequest, Generation, ScoreRequest, Scores
from mas.agents.llm.lockstep import Ask, Step, drive
from mas.agents.llm.narrator import Narrator
from mas.agents.llm.parsing import clean_message, parse_action
from mas.agents.llm.spec import LLMSpec
from mas.agents.llm.world_model import distribution, expected_payoffs, prediction_prompt, questions
from mas.agents.llm.prompts import PromptBuilder, PromptContext, inbox_entries, rotations, untrusted

if TYPE_CHECKING:
    from mas.agents.llm.wrappers import RecordingBackend
    from mas.games.base import GameInfo


@dataclass(eq=False)  # turns are compared by identity
class _Turn:
    """One agent's decision in the making, and everything recorded about it."""

    view: AgentView
    labels: list[str]  # name of every action index in this state
    legal: list[int]
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    record: dict[str, Any] = field(default_factory=dict)
    action: int | None = None
    message: str = ""
    conversation: tuple[dict[str, str], ...] = ()  # generate mode: the prompt and any corrections

    @property
    def options(self) -> list[str]:
        return [self.labels[i] for i in self.legal]

    def log(self, call: dict[str, Any], response: Scores | Generation) -> None:
        """Keep one backend call's record (the format the replay backend reads) and its tokens."""
        self.calls.append(call)
        if isinstance(response, Scores):
            self.prompt_tokens += response.prompt_tokens + sum(response.candidate_tokens)
        else:
            self.prompt_tokens += response.prompt_tokens
            self.completion_tokens += response.completion_tokens


class LLMPolicy(Policy):
    """Decides for its agents with a language model; see the module docstring."""

    needs_text = True
    #: a tournament's matches with this entrant play 32 at a time: every round, each
    #: model answers all of them in one packed call (`act_many`); a killed run loses at most
    #: the matches in flight
    tournament_copies: ClassVar[int] = 32
    #: a packed scoring call's log-probabilities differ from one prompt's alone in about
    #: the fifth digit (batched matrix products)
    batch_invariant: ClassVar[bool] = False

    def __init__(self, spec: LLMSpec, game: "GameInfo", agents: Sequence[AgentSetup], agent_ids: Sequence[str]) -> None:
        super().__init__(spec, game, agents, agent_ids)
        self.prompts = PromptBuilder(game.task, spec.template.system, spec.template.user)
        self.narrator = Narrator(spec.narrator) if spec.narrator else None
        self._seats = {agent: seat for seat, agent in enumerate(agent_ids)}
        descriptions = getattr(getattr(game, "config", None), "action_descriptions", None) or {}
        self._aliases = {words: name for name, words in descriptions.items()}
        self._backends: dict[str, RecordingBackend] = {}
        self.reset(0)

    # ----- backends (loaded on first use, shared per process by the factory) -----------------
    def backend(self, which: Literal["policy", "narrator"] = "policy") -> "RecordingBackend":
        """The policy's (or its narrator's) backend: the live one behind a cache of identical
        requests (one per run) and a recorder of every call."""
        if which not in self._backends:
            from mas.agents.llm.factory import get_backend
            from mas.agents.llm.wrappers import CachingBackend, RecordingBackend

            config = self.spec.backend
            if which == "narrator" and self.spec.narrator and self.spec.narrator.backend is not None:
                config = self.spec.narrator.backend
            self._backends[which] = RecordingBackend(CachingBackend(get_backend(config)))
        return self._backends[which]

    def _call(self, op: Literal["score", "generate"], requests: list[Any], owners: list[_Turn],
              which: Literal["policy", "narrator"] = "policy") -> Step:
        """One batched backend call (asked of the driver, see `lockstep`); each turn keeps
        the records of its own requests."""
        backend = self.backend(which)
        replies = yield Ask(backend, op, requests)
        for owner, call, reply in zip(owners, backend.take(), replies):
            owner.log(call, reply)
        return replies

    def reset(self, seed: int) -> None:
        # Reused keys/values change the last bits of a float, so an episode starts from a
        # clean backend: its results then depend on its seed alone (resume, parallel runs).
        # All live backends of the process are cleared: one may be warm from an earlier run.
        from mas.agents.llm.factory import clear_caches

        clear_caches()
        for backend in self._backends.values():
            backend.clear_cache()
        self.rng = np.random.default_rng(seed)
        self._history: dict[str, list[dict[str, Any]]] = {a.agent: [] for a in self.agents}
        self._seen_round: dict[str, int] = {}
        self._last_summary: dict[str, Any] = {}
        self._last_message: dict[str, str] = {}
        self._narration: dict[str, tuple[int, str]] = {}  # agent -> (round, text)

    def _seed(self, temperature: float) -> int | None:
        # greedy requests carry no seed, so identical prompts are identical requests (cached)
        return int(self.rng.integers(2**31 - 1)) if temperature > 0 else None

    # ----- one step ---------------------------------------------------------------------------
    def act(self, views: Sequence[AgentView]) -> list[Decision]:
        return drive([self._steps(views)])[0]

    @classmethod
    def act_many(cls, policies: Sequence[Policy], views: Sequence[Sequence[AgentView]]) -> list[list[Decision]]:
        """Every instance's step at once, each backend call packed across them (`lockstep`)."""
        return drive([policy._steps(v) for policy, v in zip(policies, views)])  # type: ignore[attr-defined]

    def _steps(self, views: Sequence[AgentView]) -> Step:
        """One step as a generator of backend calls (see `lockstep`); returns the decisions."""
        turns = [self._start(view) for view in views]
        deciding = [t for t in turns if not t.view.talking]
        for turn in deciding:
            if len(turn.legal) == 1:
                turn.action = turn.legal[0]
                turn.record.update(status="forced", action=turn.options[0])
        asking = [t for t in deciding if t.action is None]
        talking = [t for t in turns if self._writes_message(t.view)]
        yield from self._narrate([t for t in turns if t in asking or (t in talking and not self.spec.message)])
        if self.spec.world_model is not None:
            yield from self._predict(asking)
            if self.spec.world_model.plan:
                self._plan(asking)
                asking = []
        if self.spec.mode == "score":
            yield from self._score(asking)
            yield from self._generate(actions=[], talkers=talking)
        else:
            yield from self._generate(actions=asking, talkers=talking)
        return [self._finish(turn) for turn in turns]

    def _start(self, view: AgentView) -> _Turn:
        """Update the agent's history with the round that just ended and open its turn."""
        agent = view.agent
        if view.last_actions is not None and self._seen_round.get(agent) != view.round:
            self._history[agent].append(self._history_entry(view))
        self._seen_round[agent] = view.round
        self._last_summary[agent] = view.summary
        labels = self.info.action_labels(view.seat, view.summary)
        return _Turn(view=view, labels=labels, legal=view.legal_actions())

    def _history_entry(self, view: AgentView) -> dict[str, Any]:
        """The last round from the agent's side: its action, the others', its reward."""
        summary = self._last_summary.get(view.agent, view.summary)
        names = {a: self.info.action_labels(seat, summary) for a, seat in self._seats.items()}
        actions = view.last_actions or {}
        reward = (view.last_rewards or {}).get(view.agent, 0.0)
        return {
            "round": view.round,
            "you": names[view.agent][actions[view.agent]],
            "others": [{"agent": a, "action": names[a][i]} for a, i in actions.items() if a != view.agent],
            "reward": f"{reward:g}",
        }

    def _context(self, turn: _Turn, talking: bool, options: list[str] | None = None) -> PromptContext:
        view = turn.view
        narrated_round, narration = self._narration.get(view.agent, (-1, ""))
        narration = narration if narrated_round == view.round else ""
        hide_situation = bool(narration) and self.spec.narrator is not None and self.spec.narrator.replace_situation
        keep = self.spec.history_rounds
        return PromptContext(
            agent=view.agent, round=view.round + 1, talking=talking, rules=view.rules,
            situation="" if hide_situation else view.situation,
            options=turn.options if options is None else options, persona=view.persona, narration=narration,
            history=self._history[view.agent][-keep:] if keep else [], inbox=inbox_entries(view),
            last_message=self._last_message.get(view.agent, ""), message_limit=view.message_limit, json=self.spec.json_reply,
        )

    def _writes_message(self, view: AgentView) -> bool:
        if view.message_limit <= 0 or not self.spec.talk:
            return False
        return view.talking or self.spec.talk_on_action_steps

    # ----- narration -------------------------------------------------------------------------
    def _narrate(self, turns: list[_Turn]) -> Step:
        """Narrate, in one batched call, for every agent that has no narration of this round yet."""
        if self.narrator is None:
            return
        todo = [t for t in turns if self._narration.get(t.view.agent, (-1, ""))[0] != t.view.round]
        if not todo:
            return
        requests = []
        for turn in todo:
            history = self._history[turn.view.agent]
            last = _describe_round(history[-1]) if history and history[-1]["round"] == turn.view.round else ""
            requests.append(self.narrator.request(turn.view, last, self._seed(self.narrator.config.temperature)))
        replies = yield from self._call("generate", requests, todo, which="narrator")
        for turn, reply in zip(todo, replies):
            self._narration[turn.view.agent] = (turn.view.round, Narrator.text(reply))

    # ----- world model (see mas.agents.llm.world_model) ----------------------------------------
    def _predict(self, turns: list[_Turn]) -> Step:
        """Every agent's predictions of the others' actions (and the outcome), one `score` call."""
        requests, owners, asked = [], [], []
        for turn in turns:
            prompt = self.prompts.render(self._context(turn, talking=False))
            for target, question, labels in questions(self.info, turn.view.seat, self.agent_ids, turn.view.summary,
                                                      self.spec.world_model.predict):
                requests.append(ScoreRequest(messages=prediction_prompt(prompt, question, labels), candidates=tuple(labels)))
                owners.append(turn)
                asked.append((target, labels))
        if not requests:
            return
        replies = yield from self._call("score", requests, owners)
        for turn, (target, labels), request, reply in zip(owners, asked, requests, replies):
            problem = reply.problem(request.candidates)
            if not problem:  # a prediction the backend could not score is left out, not guessed
                turn.record.setdefault("predictions", {})[target] = {"labels": labels, "probs": distribution(reply.logprobs)}

    def _plan(self, turns: list[_Turn]) -> None:
        """Play the legal action with the best expected payoff under the agent's predictions."""
        for turn in turns:
            predictions = turn.record.get("predictions", {})
            seats = {agent: seat for seat, agent in enumerate(self.agent_ids)}
            predicted = {seats[t]: p["probs"] for t, p in predictions.items() if t in seats}
            if len(predicted) < self.info.n_agents - 1:  # some prediction failed: no plan to follow
                turn.action = self._fallback(turn)
                turn.record.update(status="fallback", action=turn.labels[turn.action], parsed=None,
                                   error="no prediction of every other agent to plan on")
                continue
            values = expected_payoffs(self.info, turn.view.seat, turn.view.summary, turn.legal, predicted)
            pick = int(np.argmax(values))
            turn.action = turn.legal[pick]
            turn.record.update(
                status="ok", action=turn.options[pick], parsed=turn.options[pick],
                expected_payoffs={label: v for label, v in zip(turn.options, values)},
                distribution={label: float(i == pick) for i, label in enumerate(turn.options)},
            )

    # ----- score mode --------------------------------------------------------------------------
    def _score(self, turns: list[_Turn]) -> Step:
        """Every agent's every option order in one `score` call; average over orders."""
        if not turns:
            return
        requests, owners = [], []
        for turn in turns:
            for listed in rotations(turn.options) if self.spec.debias else [turn.options]:
                prompt = self.prompts.render(self._context(turn, talking=False, options=listed))
                requests.append(ScoreRequest(messages=prompt, candidates=tuple(turn.options)))
                owners.append(turn)
        replies = yield from self._call("score", requests, owners)
        by_order: dict[_Turn, list[np.ndarray]] = {turn: [] for turn in turns}
        invalid: dict[_Turn, str] = {}
        for turn, request, reply in zip(owners, requests, replies):
            turn.record.setdefault("prompt", list(request.messages))
            problem = reply.problem(request.candidates)
            if problem:  # NaN or positive scores must not become a (confident) choice
                invalid.setdefault(turn, f"invalid scores from the backend: {problem}")
            else:
                by_order[turn].append(softmax(np.array(reply.logprobs), self.spec.temperature))
        for turn, reason in invalid.items():
            # asking again gives the same scores (deterministic, cached), so no retry: fall back
            turn.action = self._fallback(turn)
            turn.record.update(status="fallback", action=turn.labels[turn.action], parsed=None, error=reason)
            del by_order[turn]
        for turn, distributions in by_order.items():
            probs = np.mean(distributions, axis=0)
            if self.spec.choice == "argmax":
                pick = int(np.argmax(probs))
            else:
                pick = int(self.rng.choice(len(probs), p=probs / probs.sum()))
            turn.action = turn.legal[pick]
            turn.record.update(
                status="ok", action=turn.options[pick], parsed=turn.options[pick],
                distribution={label: float(p) for label, p in zip(turn.options, probs)},
            )
            if len(distributions) > 1:
                turn.record["order_distributions"] = [[float(p) for p in d] for d in distributions]

    # ----- generate mode and messages ----------------------------------------------------------
    def _generate(self, actions: list[_Turn], talkers: list[_Turn]) -> Step:
        """Action replies (generate mode) and messages, all in one `generate` call."""
        requests: list[GenerateRequest] = []
        for turn in actions:
            options = turn.options
            if self.spec.debias:
                options = rotations(options)[int(self.rng.integers(len(options)))]
            turn.conversation = self.prompts.render(self._context(turn, talking=False, options=options))
            turn.record.update(prompt=list(turn.conversation), attempts=[])
            requests.append(self._action_request(turn.conversation))
        writers = [t for t in talkers if not self.spec.message]
        for turn in writers:
            prompt = self.prompts.render(self._context(turn, talking=True))
            turn.record["prompt" if turn.view.talking else "message_prompt"] = list(prompt)
            requests.append(GenerateRequest(
                messages=prompt, max_tokens=self.spec.max_message_tokens, temperature=self.spec.message_temperature,
                seed=self._seed(self.spec.message_temperature),
            ))
        if self.spec.message:  # a fixed message instead of a generated one
            for turn in talkers:
                turn.message = render_message(self.spec.message, turn.view, turn.legal[0] if turn.legal else 0)
        if not requests:
            return
        replies = yield from self._call("generate", requests, actions + writers)
        for turn, reply in zip(writers, replies[len(actions):]):
            turn.message = clean_message(reply.text, turn.view.message_limit)
            turn.record["message_raw"] = reply.text
        yield from self._settle(list(zip(actions, replies[: len(actions)])))

    def _settle(self, pending: list[tuple[_Turn, Generation]]) -> Step:
        """Parse the action replies; answer the invalid ones with a correction, in one batched
        call per retry; after the last retry fall back (every attempt is recorded)."""
        for attempt in range(self.spec.retries + 1):
            invalid = []
            for turn, reply in pending:
                parsed = parse_action(reply.text, turn.options, use_json=self.spec.json_reply, aliases=self._aliases)
                turn.record["raw"] = reply.text
                turn.record["attempts"].append({"raw": reply.text, "error": parsed.reason})
                if parsed.ok:
                    turn.action = turn.legal[turn.options.index(parsed.label)]
                    turn.record.update(status="ok" if attempt == 0 else "retried", action=parsed.label, parsed=parsed.label)
                else:
                    turn.conversation += (
                        {"role": "assistant", "content": reply.text},
                        {"role": "user", "content": f"That is not a valid answer ({untrusted(parsed.reason)}). "
                         f"Reply with exactly one of: {', '.join(turn.options)}."},
                    )
                    invalid.append(turn)
            if not invalid or attempt == self.spec.retries:
                break
            replies = yield from self._call("generate", [self._action_request(t.conversation) for t in invalid], invalid)
            pending = list(zip(invalid, replies))
        for turn in invalid:
            turn.action = self._fallback(turn)
            turn.record.update(status="fallback", action=turn.labels[turn.action], parsed=None)

    def _action_request(self, messages: tuple[dict[str, str], ...]) -> GenerateRequest:
        return GenerateRequest(
            messages=messages, max_tokens=self.spec.max_tokens, temperature=self.spec.generate_temperature,
            seed=self._seed(self.spec.generate_temperature), json=self.spec.json_reply,
        )

    def _fallback(self, turn: _Turn) -> int:
        """The declared fallback action if it is legal now, else the first legal action."""
        wanted = self.spec.fallback_action
        for index in turn.legal:
            if wanted is not None and wanted in (turn.labels[index], turn.view.action_names[index]):
                return index
        return turn.legal[0]

    def _finish(self, turn: _Turn) -> Decision:
        view = turn.view
        action = turn.action if turn.action is not None else (turn.legal[0] if turn.legal else 0)
        record = turn.record
        attempts = record.get("attempts", [])
        if view.talking:
            mode = "talk"
        else:
            mode = "forced" if record.get("status") == "forced" else "plan" if "expected_payoffs" in record else self.spec.mode
        record.update(
            mode=mode,
            message=turn.message,
            tokens={"prompt": turn.prompt_tokens, "completion": turn.completion_tokens},
            outputs=len(attempts), invalid=sum(1 for a in attempts if a["error"]),
            calls=turn.calls,
        )
        narration = self._narration.get(view.agent, (-1, ""))
        if narration[0] == view.round:
            record["narration"] = narration[1]
        if turn.message:
            self._last_message[view.agent] = untrusted(turn.message)
        return Decision(action=action, message=turn.message, record=record)


def _describe_round(entry: dict[str, Any]) -> str:
    others = "".join(f", {o['agent']} played {o['action']}" for o in entry["others"])
    return f"you played {entry['you']}{others}; you got {entry['reward']}."


def softmax(logprobs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities from log-likelihoods at a temperature; 0 gives the one-hot argmax.

    Raises:
        ValueError: a value is not finite (np.argmax would pick a NaN's index as certain).
    """
    if not np.all(np.isfinite(logprobs)):
        raise ValueError(f"log-likelihoods must be finite, got {logprobs.tolist()}")
    if temperature <= 0:
        out = np.zeros_like(logprobs, dtype=np.float64)
        out[int(np.argmax(logprobs))] = 1.0
        return out
    scaled = logprobs.astype(np.float64) / temperature
    scaled -= scaled.max()
    weights = np.exp(scaled)
    return weights / weights.sum()

