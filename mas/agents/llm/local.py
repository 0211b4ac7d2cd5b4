"""The local backend: a Hugging Face transformers model in this process.

`score` gives each candidate's total log-likelihood as the start of the assistant's reply:
the conversation is rendered with the model's chat template with the assistant turn opened,
the candidate is tokenized on its own and appended, and the log-probabilities of its tokens
are summed. Three things keep it fast on a compute-bound CPU, none of which changes the
result beyond float rounding (a test holds the optimised path to the plain one):

1. all prompts of a call run in one packed forward pass (`packed`): their new tokens end
   to end, no padding, each attending to its own cached past, with its candidates scored
   in the same pass as a token tree over the prompt;
2. a prefix cache (`kvcache.PrefixCache`) keeps recent prompts' keys/values, so the rules
   that every agent's prompt starts with are computed once;
3. for the same reason an agent's prompt in the next round, which starts with this round's,
   only computes its new tokens.

`generate` prefills the prompts the same way, then decodes all requests together
(left-padded keys/values), sampling each row with its own seeded generator so that a
request's output does not depend on what else is in the batch.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from mas.agents.llm.backend import (
    BackendInfo,
    ChatMessage,
    GenerateRequest,
    Generation,
    LLMBackend,
    Scores,
    ScoreRequest,
)
from mas.agents.llm.kvcache import KV, CacheEntry, PrefixCache, common_prefix
from mas.agents.llm.models import LoadedModel
from mas.agents.llm.packed import Segment, SegmentResult, forward_packed, install_attention


class TransformersBackend(LLMBackend):
    """Generate and score with a local causal LM (see the module docstring).

    Args:
        loaded: the model and tokenizer (`models.load_model`), shared between backends.
        reuse_kv: keep a prefix cache of keys/values across calls (off: every prompt is
            computed from scratch; candidates still share their prompt's keys/values).
        cache_tokens: token budget of the prefix cache.
        chunk: most tokens (prompts and candidates) in one packed forward pass (bounds memory).
    """

    SHARED_MIN = 16  # shortest shared prefix worth a pass of its own (tokens)

    def __init__(self, loaded: LoadedModel, reuse_kv: bool = True, cache_tokens: int = 65536, chunk: int = 1024) -> None:
        import torch

        self._torch = torch
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.chunk = chunk
        sliding = getattr(self.model.config, "sliding_window", None)
        self.reuse_kv = reuse_kv and not sliding  # a sliding window makes cached prefixes inexact
        self.cache = PrefixCache(cache_tokens)
        self._lock = threading.RLock()
        self._candidate_ids: dict[str, list[int]] = {}
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self._eos_ids = eos_ids
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        # transformers 5 renamed `past_key_values` to `cache`; accept either.
        self._cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self.packed = install_attention(self.model)

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(
            kind="local",
            model=self.loaded.name,
            details={"device": str(self.device), "dtype": str(self.loaded.dtype).removeprefix("torch.")},
        )

    # ----- tokens ---------------------------------------------------------------------
    def prompt_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of the conversation with the assistant's turn opened."""
        encoded = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
        ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        return [int(i) for i in ids]

    def text_ids(self, text: str) -> list[int]:
        """Token ids of a bare piece of text (no special tokens), memoised for candidates."""
        if text not in self._candidate_ids:
            self._candidate_ids[text] = [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]
        return self._candidate_ids[text]

    def clear_cache(self) -> None:
        """Forget cached keys/values (call after changing the model's weights)."""
        with self._lock:
            self.cache.clear()

    # ----- score ----------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        if not requests:
            return []
        with self._lock, self._torch.inference_mode():
            prompts = [np.asarray(self.prompt_ids(r.messages), dtype=np.int64) for r in requests]
            candidates = [[self.text_ids(c) for c in r.candidates] for r in requests]
            done = self._extend(prompts, candidates)
            return [
                Scores(logprobs=tuple(result.candidate_logprobs), candidate_tokens=tuple(len(c) for c in cands),
                       prompt_tokens=len(p))
                for p, cands, (result, _) in zip(prompts, candidates, done)
            ]

    def _prefill_shared_prefix(self, prompts: list[np.ndarray], all_logprobs: bool) -> None:
        """Compute once what several prompts of a batch share, before they run as a batch
        (in one pass, each would compute it: none is in the cache yet). Two levels: first
        the prefix all prompts share (the rules), then in one pass the longer prefixes that
        neighbours in sorted order share, e.g. an agent's whole situation, common to its
        prompts that list the options in different orders (debiasing)."""
        if not self.reuse_kv or len(prompts) < 2:
            return
        order = sorted(range(len(prompts)), key=lambda i: prompts[i].tolist())
        everyone = common_prefix(prompts[order[0]], prompts[order[-1]])
        self._prefill_prefixes([prompts[order[0]][: min(everyone, len(prompts[order[0]]) - 1)]], all_logprobs)
        shared = [0] * len(prompts)
        for a, b in zip(order, order[1:]):
            common = common_prefix(prompts[a], prompts[b])
            shared[a], shared[b] = max(shared[a], common), max(shared[b], common)
        self._prefill_prefixes([tokens[: min(length, len(tokens) - 1)] for tokens, length in zip(prompts, shared)],
                               all_logprobs)

    def _prefill_prefixes(self, prefixes: list[np.ndarray], all_logprobs: bool) -> None:
        """One pass over the distinct `prefixes` that add enough to what is cached."""
        todo: dict[bytes, np.ndarray] = {}
        for tokens in prefixes:
            if len(tokens) < self.SHARED_MIN:
                continue
            _, cached = self.cache.longest_prefix(tokens)
            if len(tokens) - cached >= self.SHARED_MIN:
                todo.setdefault(tokens.tobytes(), tokens)
        if todo:
            self._extend(list(todo.values()), all_logprobs=all_logprobs, share=False)

    # ----- prompt token log-probabilities (for /v1/completions echo) ------------------
    def token_logprobs(self, token_lists: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """log p(token i | tokens before i) for every token of each list (NaN at 0)."""
        with self._lock, self._torch.inference_mode():
            prompts = [np.asarray(ids, dtype=np.int64) for ids in token_lists]
            return [values for _, values in self._extend(prompts, all_logprobs=True)]

    # ----- prompts through the prefix cache -------------------------------------------
    def _extend(self, prompts: list[np.ndarray], candidates: Sequence[Sequence[Sequence[int]]] | None = None,
                all_logprobs: bool = False, share: bool = True) -> list[tuple[SegmentResult, np.ndarray]]:
        """Each prompt from its longest cached prefix, all together in packed passes, its
        candidates (if any) scored in the same pass; the prompts then join the cache.

        Returns per prompt the pass's result (keys/values, next-token log-probs, candidate
        totals) and each prompt token's log-prob (NaN where not computed; all of them with
        `all_logprobs`: the output layer over every token costs ~20% more here). `share`:
        first prefill what the prompts share (off for those prefills themselves).
        """
        torch = self._torch
        if share:
            self._prefill_shared_prefix(prompts, all_logprobs)
        segments, known = [], []
        for i, tokens in enumerate(prompts):
            if len(tokens) == 0:
                raise ValueError("cannot score or generate from an empty prompt")
            entry, common = self.cache.longest_prefix(tokens) if self.reuse_kv else (None, 0)
            if all_logprobs:
                # recompute the token where the prompt leaves the entry: the log-prob of the
                # prompt's next token there was never computed
                common = min(common, entry.logprobs_known()) if entry is not None else 0
                reuse = max(0, min(common, len(tokens)) - 1)
            else:
                reuse = min(common, len(tokens) - 1)
            values = np.full(len(tokens), np.nan)
            if entry is not None and reuse > 0:
                values[: min(reuse + 1, common)] = entry.token_logprobs[: min(reuse + 1, common)]
            self.cache.hits += reuse
            self.cache.misses += len(tokens) - reuse
            past = entry.prefix_kv(reuse) if entry is not None and reuse > 0 else None
            segments.append(Segment(past, tokens[reuse:], candidates[i] if candidates else (), all_logprobs))
            known.append((reuse, values))
        results = self._run(segments)
        for tokens, result, (reuse, values) in zip(prompts, results, known):
            if all_logprobs and len(tokens) - reuse > 1:
                following = torch.as_tensor(tokens[reuse + 1 :], device=self.device)
                rows = torch.arange(len(following), device=self.device)
                values[reuse + 1 :] = result.logprobs[rows, following].cpu().numpy()
            if self.reuse_kv:
                self.cache.add(CacheEntry(tokens=tokens.copy(), kv=result.kv, token_logprobs=values.copy()))
        return [(result, values) for result, (_, values) in zip(results, known)]

    def _run(self, segments: list[Segment]) -> list[SegmentResult]:
        """Segments in packed passes of at most `chunk` tokens; a longer prompt first
        advances alone, a piece at a time."""
        torch = self._torch
        segments = list(segments)
        ahead: list[list[Any]] = [[] for _ in segments]  # log-prob rows of pieces computed ahead
        for i, segment in enumerate(segments):
            while segment.size > self.chunk and len(segment.tokens) > 1:
                take = min(self.chunk, len(segment.tokens) - 1)
                piece = self._pass([Segment(segment.past, segment.tokens[:take], all_logprobs=segment.all_logprobs)])[0]
                ahead[i].append(piece.logprobs)
                segment = Segment(piece.kv, segment.tokens[take:], segment.candidates, segment.all_logprobs)
            segments[i] = segment
        results: list[SegmentResult] = []
        group: list[Segment] = []
        used = 0
        for segment in segments:
            size = segment.size
            if group and used + size > self.chunk:
                results.extend(self._pass(group))
                group, used = [], 0
            group.append(segment)
            used += size
        results.extend(self._pass(group))
        for result, pieces, segment in zip(results, ahead, segments):
            if pieces and segment.all_logprobs:
                result.logprobs = torch.cat([*pieces, result.logprobs])
        return results

    def _pass(self, segments: list[Segment]) -> list[SegmentResult]:
        """One packed forward pass, or for models without the packed attention (a sliding
        window, a non-SDPA attention) each segment and candidate on its own."""
        if self.packed:
            return forward_packed(self.model, segments, self.device)
        return [self._pass_alone(segment) for segment in segments]

    def _pass_alone(self, segment: Segment) -> SegmentResult:
        torch = self._torch
        start, n = segment.past_len, len(segment.tokens)
        out = self._forward(
            input_ids=torch.as_tensor(segment.tokens, device=self.device)[None],
            position_ids=torch.arange(start, start + n, device=self.device)[None],
            kv_cache=self._cache_of(segment.past), logits_to_keep=0 if segment.all_logprobs else 1,
        )
        kv = tuple((layer.keys, layer.values) for layer in self._cache_out(out).layers)
        logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
        totals = []
        for cand in segment.candidates:
            total = float(logprobs[-1, cand[0]]) if cand else 0.0
            if len(cand) > 1:
                later = self._forward(
                    input_ids=torch.as_tensor(cand[:-1], device=self.device)[None],
                    position_ids=torch.arange(start + n, start + n + len(cand) - 1, device=self.device)[None],
                    kv_cache=self._cache_of(kv), logits_to_keep=0,
                )
                steps = torch.log_softmax(later.logits[0].float(), dim=-1)
                total += float(steps[torch.arange(len(cand) - 1), torch.as_tensor(cand[1:])].sum())
            totals.append(total)
        return SegmentResult(kv=kv, logprobs=logprobs, candidate_logprobs=totals)

    def _forward(self, kv_cache: Any, **inputs: Any) -> Any:
        return self.model(**inputs, **{self._cache_arg: kv_cache}, use_cache=True)

    @staticmethod
    def _cache_out(out: Any) -> Any:
        return out.cache if "cache" in out else out.past_key_values

    def _cache_of(self, kv: KV | None) -> Any:
        from transformers import DynamicCache

        if kv is None:
            return DynamicCache(config=self.model.config)
        return DynamicCache(ddp_cache_data=kv, config=self.model.config)

    # ----- generate -------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        if not requests:
            return []
        with self._lock:
            prompts = [self.prompt_ids(r.messages) for r in requests]
        return self.generate_tokens(prompts, requests)

    def generate_tokens(self, prompts: Sequence[Sequence[int]], requests: Sequence[GenerateRequest]) -> list[Generation]:
        """Continue raw token prompts (for `/v1/completions`); `requests` give the sampling
        settings (their messages are ignored)."""
        if not prompts:
            return []
        with self._lock, self._torch.inference_mode():
            return self._generate([np.asarray(p, dtype=np.int64) for p in prompts], list(requests))

    def _generate(self, prompts: list[np.ndarray], requests: list[GenerateRequest]) -> list[Generation]:
        torch = self._torch
        prefills = [(result.kv, result.logprobs[-1]) for result, _ in self._extend(prompts)]
        batch, width = len(requests), max(len(p) for p in prompts)
        # Left-pad every prompt's keys/values to one width so all rows decode together.
        layers = []
        for layer in range(len(prefills[0][0])):
            keys = prefills[0][0][layer][0]
            shape = (batch, keys.shape[1], width, keys.shape[3])
            k_all = torch.zeros(shape, dtype=keys.dtype, device=self.device)
            v_all = torch.zeros(shape, dtype=keys.dtype, device=self.device)
            for row, (kv, _) in enumerate(prefills):
                length = kv[layer][0].shape[2]
                k_all[row, :, width - length :] = kv[layer][0][0]
                v_all[row, :, width - length :] = kv[layer][1][0]
            layers.append((k_all, v_all))
        mask = torch.zeros((batch, width), dtype=torch.long, device=self.device)
        for row, prompt in enumerate(prompts):
            mask[row, width - len(prompt) :] = 1
        positions = torch.tensor([len(p) for p in prompts], device=self.device)
        next_logprobs = torch.stack([last for _, last in prefills])
        generators = [self._generator(r.seed) for r in requests]

        produced: list[list[int]] = [[] for _ in requests]
        texts = [""] * batch
        finish = [""] * batch
        cache = self._cache_of(tuple(layers))
        for _ in range(max(r.max_tokens for r in requests)):
            chosen = []
            for row, request in enumerate(requests):
                if finish[row]:
                    chosen.append(self._pad_id)
                    continue
                token = self._pick(next_logprobs[row], request.temperature, generators[row])
                chosen.append(token)
                if token in self._eos_ids:
                    finish[row] = "stop"
                    continue
                produced[row].append(token)
                texts[row], stopped = self._apply_stop(produced[row], request.stop)
                if stopped:
                    finish[row] = "stop"
                elif len(produced[row]) >= request.max_tokens:
                    finish[row] = "length"
            if all(finish):
                break
            mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype, device=self.device)], dim=1)
            out = self._forward(
                input_ids=torch.tensor(chosen, device=self.device)[:, None],
                position_ids=positions[:, None],
                attention_mask=mask,
                kv_cache=cache,
            )
            cache = self._cache_out(out)
            positions = positions + 1
            next_logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        return [
            Generation(text=texts[row], prompt_tokens=len(prompts[row]), completion_tokens=len(produced[row]),
                       finish_reason=finish[row] or "length")
            for row in range(batch)
        ]

    def _generator(self, seed: int | None) -> Any:
        generator = self._torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        return generator

    def _pick(self, logprobs: Any, temperature: float, generator: Any) -> int:
        torch = self._torch
        if temperature <= 0:
            return int(torch.argmax(logprobs))
        probs = torch.softmax(logprobs.cpu() / temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _apply_stop(self, tokens: list[int], stop: Sequence[str]) -> tuple[str, bool]:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        cut = min((text.find(s) for s in stop if s and s in text), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)


def score_full_recompute(backend: TransformersBackend, requests: Sequence[ScoreRequest]) -> list[Scores]:
    """The plain scorer: every prompt+candidate sequence computed in full, no reuse at all.

    The reference the optimised `TransformersBackend.score` is tested against, and the
    baseline of the speed benchmark.
    """
    torch = backend._torch
    results = []
    with torch.inference_mode():
        for request in requests:
            prompt = backend.prompt_ids(request.messages)
            totals = []
            for cand in (backend.text_ids(c) for c in request.candidates):
                ids = torch.tensor(prompt + cand, device=backend.device)[None]
                logprobs = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), dim=-1)
                picked = logprobs[torch.arange(len(prompt) - 1, len(prompt) + len(cand) - 1), ids[0, len(prompt):]]
                totals.append(float(picked.sum()))
            results.append(Scores(logprobs=tuple(totals), candidate_tokens=tuple(len(backend.text_ids(c)) for c in request.candidates),
                                  prompt_tokens=len(prompt)))
    return results
