"""The trainable language model of `llm-ppo`: LoRA adapters and a differentiable scorer.

The inference backend (`mas.agents.llm.local`) scores under `torch.inference_mode` with a
key/value cache, so no gradient can pass through it. Training needs the same numbers with
gradients: `TrainableLM.score` renders a conversation exactly as the backend does (the
model's chat template with the assistant turn opened, each candidate tokenized on its own
and appended) and sums the candidate tokens' log-probabilities, through LoRA adapters
(peft) on a private copy of the model, so the shared, cached model stays untouched.

Each distinct prompt is one row of the forward pass (prompts with the same system turn share
one pass over their common prefix); a candidate's tokens after its first continue from its
prompt's keys/values, so a prompt is computed once however many candidates follow it; and
logits are taken only at the positions that are read, so the vocabulary projection stays
small.

`mas.agents.rl.scoring_backend.ScoringBackend` puts a `TrainableLM` behind the normal
`LLMBackend` interface for rollouts.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mas.agents.llm.backend import ScoreRequest
from mas.agents.llm.models import LoadedModel
from mas.errors import MissingExtraError


@dataclass(frozen=True)
class LoraSettings:
    """LoRA shape: rank, scale and which projections get adapters."""

    rank: int = 8
    alpha: float = 16.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    layers: tuple[int, ...] | None = None  # which decoder layers get adapters (None: all)


class TrainableLM:
    """A copy of a loaded model with fresh LoRA adapters (initialised from `seed`).

    Args:
        loaded: the model and tokenizer (`models.load_model`); its weights are copied.
        lora: adapter shape.
        seed: seeds the adapters' initialisation.
        adapters: names of separate adapters on the one base model (peft's named adapters;
            per-agent training names them by agent id); None: one shared adapter, "default".
            One is active at a time (`using`); scoring and generation go through it.
    """

    def __init__(self, loaded: LoadedModel, lora: LoraSettings, seed: int, adapters: Sequence[str] | None = None) -> None:
        try:
            from peft import LoraConfig, get_peft_model
        except ModuleNotFoundError:
            raise MissingExtraError("llm-ppo needs the 'peft' package: pip install 'peft>=0.13'") from None
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        torch.manual_seed(seed)  # LoRA A matrices are drawn from torch's global generator
        config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=0.0,
                            target_modules=list(lora.target_modules), bias="none",
                            layers_to_transform=None if lora.layers is None else list(lora.layers))
        self.adapter_names = list(adapters) if adapters else ["default"]
        self.model = get_peft_model(copy.deepcopy(loaded.model), config, adapter_name=self.adapter_names[0])
        for i, name in enumerate(self.adapter_names[1:], start=1):
            torch.manual_seed(seed + i)  # each adapter its own draw (B starts at zero: same policy)
            self.model.add_adapter(name, config)
        self.active = self.adapter_names[0]
        self._lora = {name: [p for n, p in self.model.named_parameters() if "lora_" in n and n.split(".")[-2] == name]
                      for name in self.adapter_names}
        self._all_trainable()
        self.model.eval()  # no dropout anywhere: the scores are those of play
        self.hidden_size = int(self.model.get_base_model().config.hidden_size)
        self._prompt_ids: dict[tuple[tuple[str, str], ...], list[int]] = {}
        self._text_ids: dict[str, list[int]] = {}
        pad = self.tokenizer.pad_token_id
        self._pad = int(pad if pad is not None else 0)
        eos = self.model.get_base_model().generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            self.eos_ids.add(int(self.tokenizer.eos_token_id))
        self._prefixes: dict[Any, Any] = {}
        self.prefix_grad = True  # gradients through the shared prompt prefix (see `_hidden`)
        self.version = 0  # counts weight updates (`forget_prefixes`): what was computed before is stale
        forward = self.model.get_base_model().model.forward
        # transformers 5 renamed `past_key_values` to `cache`; accept either (as local.py does)
        self._cache_arg = "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"

    def parameters(self, adapter: str | None = None) -> list[nn.Parameter]:
        """The trainable parameters of one adapter, or of all of them."""
        if adapter is not None:
            return list(self._lora[adapter])
        return [p for name in self.adapter_names for p in self._lora[name]]

    def adapter_for(self, agent: str) -> str:
        """The adapter that plays `agent`: its own when it has one, else the shared one."""
        return agent if agent in self._lora else self.adapter_names[0]

    @contextlib.contextmanager
    def using(self, adapter: str | None) -> Any:
        """Score and generate with `adapter` active inside the block (None: the active one)."""
        previous = self.active
        if adapter is None or adapter == previous:
            yield
            return
        self._activate(adapter)
        try:
            yield
        finally:
            self._activate(previous)

    def _activate(self, adapter: str) -> None:
        self.model.set_adapter(adapter)
        self.active = adapter
        self._all_trainable()

    def _all_trainable(self) -> None:
        # peft freezes inactive adapters on `set_adapter`; a graph built with one adapter
        # active must still reach its parameters after another was activated
        for p in self.parameters():
            p.requires_grad_(True)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """Every adapter's weights by parameter name (exact; for resuming)."""
        return {n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if "lora_" in n}

    def load_adapter_state(self, state: dict[str, torch.Tensor]) -> None:
        """Weights from `adapter_state`; names and shapes must match (KeyError/ValueError)."""
        params = {n: p for n, p in self.model.named_parameters() if "lora_" in n}
        if set(params) != set(state):
            missing = sorted(set(params) ^ set(state))
            raise KeyError(f"adapter parameter {missing[0]}")
        with torch.no_grad():
            for n, p in params.items():
                if tuple(state[n].shape) != tuple(p.shape):
                    raise ValueError(f"adapter parameter {n}: shape {tuple(state[n].shape)}, expected {tuple(p.shape)}")
                p.copy_(state[n].to(p.device))
        self.forget_prefixes()

    # ----- tokens, as `TransformersBackend` makes them ------------------------------------
    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        key = tuple((m["role"], m["content"]) for m in messages)
        if key not in self._prompt_ids:
            encoded = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
            ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
            self._prompt_ids[key] = [int(i) for i in ids]
        return self._prompt_ids[key]

    def text_ids(self, text: str) -> list[int]:
        if text not in self._text_ids:
            self._text_ids[text] = [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]
        return self._text_ids[text]

    # ----- scoring ----------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest], adapters: bool = True) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each request's candidates' total log-likelihoods ([n_candidates] tensors) and the
        final hidden state at each prompt's last token ([n_requests, hidden]). Gradients flow
        when grad mode is on; `adapters=False` scores with the frozen base model.

        Requests with the same system turn (the rules, identical for an agent all game long)
        share one forward pass over their common prefix; the rest runs as one batch on top of
        its keys/values. Without gradients the prefix's keys/values are kept until
        `forget_prefixes` (call it after every weight update)."""
        per_token, states, _ = self._reads([r.messages for r in requests],
                                           [[self.text_ids(c) for c in r.candidates] for r in requests], adapters)
        return [torch.stack([t.sum() for t in cands]) for cands in per_token], states

    def token_logprobs(self, conversations: Sequence[Sequence[dict[str, str]]], continuations: Sequence[Sequence[int]],
                       temperatures: Sequence[float], adapters: bool = True,
                       full: bool = False) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor] | None]:
        """Per-token log-probabilities ([len] each) of token sequences (generated messages) as
        the assistant's reply, under softmax(logits / temperature) (the distribution they
        were sampled from); the prompts' hidden states; with `full`, every position's whole
        log-distribution ([len, vocab] each, for an exact KL)."""
        per_token, states, rows = self._reads(conversations, [[list(c)] for c in continuations], adapters,
                                              temperatures, full)
        return [t[0] for t in per_token], states, None if rows is None else [r[0] for r in rows]

    def _reads(self, conversations: Sequence[Sequence[dict[str, str]]], cands: list[list[list[int]]], adapters: bool,
               temperatures: Sequence[float] | None = None,
               full: bool = False) -> tuple[list[list[torch.Tensor]], torch.Tensor, list[list[torch.Tensor]] | None]:
        """Per-token log-probabilities of each conversation's continuations (see `score`)."""
        prompts = [self.prompt_ids(m) for m in conversations]
        groups: dict[str, list[int]] = {}
        for i, messages in enumerate(conversations):
            groups.setdefault(messages[0]["content"] if messages else "", []).append(i)
        tokens: list[list[torch.Tensor]] = [[] for _ in conversations]
        dists: list[list[torch.Tensor]] | None = [[] for _ in conversations] if full else None
        states: list[torch.Tensor | None] = [None] * len(conversations)
        for members in groups.values():
            rows: dict[tuple[int, ...], int] = {}  # distinct prompts
            for i in members:
                rows.setdefault(tuple(prompts[i]), len(rows))
            # each candidate's tokens after the first continue its prompt's keys/values: the
            # prompt is computed once however many candidates (and tokens) follow it
            tails: dict[tuple[int, tuple[int, ...]], int] = {}
            for i in members:
                for c in cands[i]:
                    if len(c) > 1:
                        tails.setdefault((rows[tuple(prompts[i])], tuple(c[:-1])), len(tails))
            seqs = list(rows)
            shared = min(_common(seqs[0], s) for s in seqs)
            shared = min(shared, min(len(s) for s in seqs) - 1)  # every row keeps a token of its own
            if not torch.is_grad_enabled():
                # keep only the system turn: every later call of this group reuses it, whereas
                # a longer common prefix (rows of one step) is rarely met again
                messages = conversations[members[0]]
                if len(messages) > 1:
                    shared = min(shared, _common(seqs[0], self.prompt_ids(messages[:1])))
                shared = self._kept_prefix(seqs[0], shared, adapters)
            hidden, cache = self._hidden(seqs, shared, adapters, keep=bool(tails))  # [rows, width, hidden] after `shared`
            width = hidden.shape[1]
            flat = hidden.reshape(-1, hidden.shape[-1])
            if tails:
                after = self._continue(cache, [len(s) for s in seqs], list(tails), adapters)  # [tails, tail width, hidden]
                flat = torch.cat([flat, after.reshape(-1, after.shape[-1])])
                tail_width, tail_start = after.shape[1], len(seqs) * width
            reads: list[int] = []  # rows of `flat`
            scale: list[float] = []
            for i in members:
                row = rows[tuple(prompts[i])]
                last = row * width + len(prompts[i]) - 1 - shared
                reads.append(last)
                for c in cands[i]:
                    reads.append(last)  # the first token reads the prompt's last position
                    if len(c) > 1:
                        tail = tail_start + tails[(row, tuple(c[:-1]))] * tail_width
                        reads.extend(tail + k for k in range(len(c) - 1))
                t = 1.0 if temperatures is None else float(temperatures[i])
                scale += [t] * (1 + sum(len(c) for c in cands[i]))
            picked = flat[torch.tensor(reads, device=self.device)]  # [reads, hidden]
            logits = self.model.get_base_model().lm_head(picked).float()
            if temperatures is not None:
                logits = logits / torch.tensor(scale, device=self.device)[:, None]
            logprobs = torch.log_softmax(logits, dim=-1)
            at = 0
            for i in members:
                states[i] = picked[at].float()
                at += 1
                for c in cands[i]:
                    targets = torch.tensor(c, device=self.device)
                    tokens[i].append(logprobs[at: at + len(c)].gather(1, targets[:, None])[:, 0])
                    if dists is not None:
                        dists[i].append(logprobs[at: at + len(c)])
                    at += len(c)
        return tokens, torch.stack(states), dists  # type: ignore[arg-type]

    @torch.no_grad()
    def generate(self, conversations: Sequence[Sequence[dict[str, str]]], max_tokens: Sequence[int],
                 temperatures: Sequence[float], seeds: Sequence[int | None]) -> list[tuple[list[int], bool, torch.Tensor]]:
        """Sample a reply per conversation with the adapters on (each row from its own
        seeded generator, so a reply does not depend on the batch): its tokens (the end
        token included when it stopped), whether it stopped, and the prompt's last hidden state."""
        from transformers import DynamicCache

        base = self.model.get_base_model()
        prompts = [self.prompt_ids(m) for m in conversations]
        n, longest = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((n, longest), self._pad, dtype=torch.long)
        mask = torch.zeros((n, longest), dtype=torch.long)
        for r, p in enumerate(prompts):  # left-padded: every row's next token is at the end
            ids[r, longest - len(p):] = torch.tensor(p)
            mask[r, longest - len(p):] = 1
        mask = mask.to(self.device)
        positions = (mask.cumsum(1) - 1).clamp_min(0)
        cache = DynamicCache(config=base.config)
        out = base.model(input_ids=ids.to(self.device), attention_mask=mask, position_ids=positions, use_cache=True,
                         **{self._cache_arg: cache})
        last = out.last_hidden_state[:, -1]
        states = last.float()
        cache = out.cache if "cache" in out else out.past_key_values
        generators = []
        for seed in seeds:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(seed) if seed is not None else 0)
            generators.append(g)
        replies: list[list[int]] = [[] for _ in range(n)]
        stopped = [False] * n
        position = positions[:, -1]
        for step in range(max(max_tokens)):
            logits = base.lm_head(last).float().cpu()
            chosen = []
            for r in range(n):
                if stopped[r] or len(replies[r]) >= max_tokens[r]:
                    chosen.append(self._pad)
                    continue
                if temperatures[r] <= 0:
                    token = int(logits[r].argmax())
                else:
                    probs = torch.softmax(logits[r] / temperatures[r], dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=generators[r]))
                replies[r].append(token)
                stopped[r] = token in self.eos_ids
                chosen.append(token)
            if all(stopped[r] or len(replies[r]) >= max_tokens[r] for r in range(n)):
                break
            mask = torch.cat([mask, torch.ones((n, 1), dtype=torch.long, device=self.device)], dim=1)
            position = position + 1
            out = base.model(input_ids=torch.tensor(chosen, device=self.device)[:, None], attention_mask=mask,
                             position_ids=position[:, None], use_cache=True, **{self._cache_arg: cache})
            cache = out.cache if "cache" in out else out.past_key_values
            last = out.last_hidden_state[:, -1]
        return [(reply, stop, state) for reply, stop, state in zip(replies, stopped, states)]

    def _kept_prefix(self, seq: tuple[int, ...], shared: int, adapters: bool) -> int:
        """The longest kept prefix of `seq` not beyond `shared` tokens, else `shared` (which
        is then computed and kept): rows that share more than the system turn this time
        still reuse what every earlier call computed once."""
        best = 0
        which = self.active if adapters else None
        for kept_adapters, tokens in self._prefixes:
            n = len(tokens)
            if kept_adapters == which and best < n <= shared and seq[:n] == tokens:
                best = n
        return best or shared

    def forget_prefixes(self) -> None:
        """Drop kept prefix keys/values (they belong to the weights before an update)."""
        self._prefixes.clear()
        self.version += 1

    def _hidden(self, seqs: list[tuple[int, ...]], shared: int, adapters: bool, keep: bool = False) -> tuple[torch.Tensor, Any]:
        """Final hidden states of every row after its first `shared` tokens (the common prefix,
        computed once); rows are right-padded, which leaves the real positions unchanged.
        With `keep`, also the keys/values of every position (for `_continue`), else None."""
        from transformers import DynamicCache

        context = contextlib.nullcontext() if adapters else self.model.disable_adapter()
        base = self.model.get_base_model().model
        config = self.model.get_base_model().config
        with context:
            past = None
            if shared > 0:
                key = (self.active if adapters else None, seqs[0][:shared])
                past = self._prefixes.get(key) if not torch.is_grad_enabled() else None
                if past is None:
                    ids = torch.tensor([seqs[0][:shared]], device=self.device)
                    # prefix_grad off: the prefix is computed exactly with the current weights, but
                    # the gradient stops there (a truncated gradient; much cheaper on CPU)
                    grad = contextlib.nullcontext() if self.prefix_grad else torch.no_grad()
                    with grad:
                        out = base(input_ids=ids, use_cache=True, **{self._cache_arg: DynamicCache(config=config)})
                    cache = out.cache if "cache" in out else out.past_key_values
                    past = tuple((layer.keys, layer.values) for layer in cache.layers)
                    if not torch.is_grad_enabled():
                        self._prefixes[key] = past
            width = max(len(s) for s in seqs) - shared
            ids = torch.full((len(seqs), width), self._pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), shared + width), dtype=torch.long)
            mask[:, :shared] = 1
            for r, s in enumerate(seqs):
                ids[r, : len(s) - shared] = torch.tensor(s[shared:])
                mask[r, shared: len(s)] = 1
            positions = torch.arange(shared, shared + width)[None].expand(len(seqs), -1)
            kwargs: dict[str, Any] = {}
            if past is not None:
                expanded = tuple((k.expand(len(seqs), -1, -1, -1), v.expand(len(seqs), -1, -1, -1)) for k, v in past)
                kwargs[self._cache_arg] = DynamicCache(ddp_cache_data=expanded, config=config)
            elif keep:
                kwargs[self._cache_arg] = DynamicCache(config=config)
            out = base(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                       position_ids=positions.to(self.device), use_cache=past is not None or keep, **kwargs)
            if not keep:
                return out.last_hidden_state, None
            return out.last_hidden_state, (out.cache if "cache" in out else out.past_key_values)

    def _continue(self, cache: Any, lengths: list[int], tails: list[tuple[int, tuple[int, ...]]], adapters: bool) -> torch.Tensor:
        """Final hidden states of token sequences that continue rows of `_hidden` (`tails`:
        (row, tokens), the row `lengths[row]` tokens long), on top of the row's keys/values
        in `cache` ([tails, tail width, hidden], right-padded)."""
        from transformers import DynamicCache

        context = contextlib.nullcontext() if adapters else self.model.disable_adapter()
        base = self.model.get_base_model().model
        config = self.model.get_base_model().config
        which = torch.tensor([row for row, _ in tails], device=self.device)
        layers = tuple((layer.keys.index_select(0, which), layer.values.index_select(0, which)) for layer in cache.layers)
        past_width = layers[0][0].shape[2]
        width = max(len(tokens) for _, tokens in tails)
        ids = torch.full((len(tails), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(tails), past_width + width), dtype=torch.long)
        positions = torch.zeros((len(tails), width), dtype=torch.long)
        for r, (row, tokens) in enumerate(tails):
            ids[r, : len(tokens)] = torch.tensor(tokens)
            mask[r, : lengths[row]] = 1  # the row's own tokens, not its padding
            mask[r, past_width: past_width + len(tokens)] = 1
            positions[r] = torch.arange(lengths[row], lengths[row] + width)
        with context:
            out = base(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device),
                       use_cache=True, **{self._cache_arg: DynamicCache(ddp_cache_data=layers, config=config)})
        return out.last_hidden_state

    def save(self, path: Path) -> None:
        """Write the adapters as peft directories (what `backend.adapter` loads): the shared
        adapter in `path`, separate adapters in `path/<name>` each."""
        if self.adapter_names == ["default"]:
            self.model.save_pretrained(str(path))
            return
        for name in self.adapter_names:  # peft writes a non-default adapter to path/<name>
            self.model.save_pretrained(str(Path(path) / name if name == "default" else path), selected_adapters=[name])


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
