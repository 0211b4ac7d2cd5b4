"""The local backend: a Hugging Face transformers model in this process.

`score` gives each candidate's total log-likelihood as the start of the assistant's reply:
the conversation is rendered with the model's chat template with the assistant turn opened,
the candidate is tokenized on its own and appended, and the log-probabilities of its tokens
are summed. Three things keep it fast on a compute-bound CPU, none of which changes the
result beyond float rounding (a test holds the optimised path to the plain one):

1. the prompt is computed once and its keys/values are shared by all of its candidates,
   which then run as one small batch;
2. a prefix cache (`kvcache.PrefixCache`) keeps recent prompts' keys/values, so the rules
   that every agent's prompt starts with are computed once;
3. for the same reason an agent's prompt in the next round, which starts with this round's,
   only computes its new tokens.

`generate` prefills each prompt through the same cache, then decodes all requests together
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


class TransformersBackend(LLMBackend):
    """Generate and score with a local causal LM (see the module docstring).

    Args:
        loaded: the model and tokenizer (`models.load_model`), shared between backends.
        reuse_kv: keep a prefix cache of keys/values across calls (off: every prompt is
            computed from scratch; candidates still share their prompt's keys/values).
        cache_tokens: token budget of the prefix cache.
        chunk: longest piece of a prompt computed in one forward pass (bounds memory).
        max_batch: most rows (prompts, or candidates) in one forward pass of `score`.
    """

    def __init__(self, loaded: LoadedModel, reuse_kv: bool = True, cache_tokens: int = 65536, chunk: int = 512,
                 max_batch: int = 16) -> None:
        import torch

        self._torch = torch
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.chunk = chunk
        self.max_batch = max_batch
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
        use_grouped_query_attention(self.model)

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
            totals = self._score_batch(prompts, candidates)
            return [
                Scores(logprobs=tuple(float(x) for x in t), candidate_tokens=tuple(len(c) for c in cands),
                       prompt_tokens=len(p))
                for p, cands, t in zip(prompts, candidates, totals)
            ]

    def _score_batch(self, prompts: list[np.ndarray], candidates: list[list[list[int]]]) -> list[list[float]]:
        """Prompts in batched forward passes (each from its longest cached prefix), then the
        candidates' later tokens in batched passes over their prompt's keys/values."""
        torch = self._torch
        self._prefill_shared_prefix(prompts)
        kvs: list[KV] = []
        lasts: list[Any] = []
        for group in _groups(len(prompts), self.max_batch):
            rows = []
            for i in group:
                entry, common = self.cache.longest_prefix(prompts[i]) if self.reuse_kv else (None, 0)
                reuse = max(0, min(common, len(prompts[i]) - 1))
                rows.append((entry.prefix_kv(reuse) if entry is not None and reuse else None, prompts[i][reuse:]))
                self.cache.hits += reuse
                self.cache.misses += len(prompts[i]) - reuse
            row_kvs, last = self._extend_many(rows, all_logits=False)
            for i, kv in zip(group, row_kvs):
                kvs.append(kv)
                if self.reuse_kv:
                    self.cache.add(CacheEntry(tokens=prompts[i].copy(), kv=kv, token_logprobs=np.full(len(prompts[i]), np.nan)))
            lasts.extend(last)
        totals = [[float(lasts[i][c[0]]) if c else 0.0 for c in cands] for i, cands in enumerate(candidates)]
        # Tokens 2..n of every candidate, all requests together, over their prompt's keys/values.
        later = [(i, j) for i, cands in enumerate(candidates) for j, c in enumerate(cands) if len(c) > 1]
        for group in _groups(len(later), self.max_batch):
            pairs = [later[g] for g in group]
            rows = [(kvs[i], np.asarray(candidates[i][j][:-1], dtype=np.int64)) for i, j in pairs]
            _, logprobs = self._extend_many(rows, all_logits=True, keep_kv=False)
            width = logprobs.shape[1]
            for row, (i, j) in enumerate(pairs):
                cand = candidates[i][j]
                offset = width - (len(cand) - 1)  # new tokens are left-padded
                positions = torch.arange(offset, width, device=self.device)
                targets = torch.tensor(cand[1:], device=self.device)
                totals[i][j] += float(logprobs[row, positions, targets].sum())
        return totals

    def _prefill_shared_prefix(self, prompts: list[np.ndarray]) -> None:
        """Compute the prefix all prompts share (the rules) once, before they run as a batch."""
        if not self.reuse_kv or len(prompts) < 2:
            return
        shared = min(common_prefix(prompts[0], p) for p in prompts[1:])
        if shared < 2 or shared >= len(prompts[0]):
            return
        _, cached = self.cache.longest_prefix(prompts[0][:shared])
        if shared - cached >= 16:
            self._prefill(prompts[0][:shared])

    def _extend_many(self, rows: list[tuple[KV | None, np.ndarray]], all_logits: bool,
                     keep_kv: bool = True) -> tuple[list[KV], Any]:
        """One forward pass over several rows, each continuing its own cached keys/values.

        Layout of row i: [pad][its past][pad][its new tokens], pads masked out, positions
        given explicitly, so every row computes exactly what it would alone. New tokens are
        left-padded so the last position is the same for all rows.

        Returns each row's keys/values (past + new; empty if not `keep_kv`) and log-probs:
        [rows, vocab] of the next token, or [rows, width, vocab] over the new positions.
        """
        torch = self._torch
        past_lens = [0 if kv is None else kv[0][0].shape[2] for kv, _ in rows]
        new_lens = [len(new) for _, new in rows]
        past_width, width, batch = max(past_lens), max(new_lens), len(rows)
        input_ids = torch.full((batch, width), self._pad_id, dtype=torch.long)
        positions = torch.zeros((batch, width), dtype=torch.long)
        mask = torch.zeros((batch, past_width + width), dtype=torch.long)
        for r, ((_, new), p, n) in enumerate(zip(rows, past_lens, new_lens)):
            input_ids[r, width - n :] = torch.as_tensor(new)
            positions[r, width - n :] = torch.arange(p, p + n)
            mask[r, past_width - p : past_width] = 1
            mask[r, past_width + width - n :] = 1
        past = None
        if past_width:
            layers = []
            for layer in range(len(next(kv for kv, _ in rows if kv is not None))):
                ref = next(kv for kv, _ in rows if kv is not None)[layer][0]
                shape = (batch, ref.shape[1], past_width, ref.shape[3])
                keys = torch.zeros(shape, dtype=ref.dtype, device=self.device)
                values = torch.zeros(shape, dtype=ref.dtype, device=self.device)
                for r, ((kv, _), p) in enumerate(zip(rows, past_lens)):
                    if p:
                        keys[r, :, past_width - p :] = kv[layer][0][0]
                        values[r, :, past_width - p :] = kv[layer][1][0]
                layers.append((keys, values))
            past = tuple(layers)
        out = self._forward(
            input_ids=input_ids.to(self.device), position_ids=positions.to(self.device),
            attention_mask=mask.to(self.device), kv_cache=self._cache_of(past), logits_to_keep=0 if all_logits else 1,
        )
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        row_kvs: list[KV] = []
        if keep_kv:
            cache_layers = self._cache_out(out).layers
            for r, (p, n) in enumerate(zip(past_lens, new_lens)):
                row_kvs.append(tuple(
                    (torch.cat([layer.keys[r : r + 1, :, past_width - p : past_width], layer.keys[r : r + 1, :, past_width + width - n :]], dim=2),
                     torch.cat([layer.values[r : r + 1, :, past_width - p : past_width], layer.values[r : r + 1, :, past_width + width - n :]], dim=2))
                    for layer in cache_layers
                ))
        return row_kvs, (logprobs if all_logits else logprobs[:, -1])

    # ----- prompt token log-probabilities (for /v1/completions echo) ------------------
    def token_logprobs(self, token_lists: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """log p(token i | tokens before i) for every token of each list (NaN at 0)."""
        with self._lock, self._torch.inference_mode():
            return [self._prefill(np.asarray(ids, dtype=np.int64), all_logprobs=True)[2] for ids in token_lists]

    # ----- prefill through the prefix cache -------------------------------------------
    def _prefill(self, tokens: np.ndarray, all_logprobs: bool = False) -> tuple[KV, Any, np.ndarray]:
        """Keys/values of `tokens`, log-probs of the next token, and each token's log-prob
        (only with `all_logprobs`: the output layer over every token costs ~20% more here).

        Reuses the longest cached prefix, but always recomputes at least the token where
        the prompt leaves it, so every token's log-prob comes from a matching context.
        """
        torch = self._torch
        if len(tokens) == 0:
            raise ValueError("cannot score or generate from an empty prompt")
        entry, common = self.cache.longest_prefix(tokens) if self.reuse_kv else (None, 0)
        if entry is not None and all_logprobs:
            common = min(common, entry.logprobs_known())
        reuse = max(0, min(common, len(tokens)) - 1)
        kv = entry.prefix_kv(reuse) if entry is not None and reuse > 0 else None
        token_logprobs = np.full(len(tokens), np.nan)
        if entry is not None and reuse > 0:
            token_logprobs[: reuse + 1] = entry.token_logprobs[: reuse + 1]
        start = reuse
        last = None
        while start < len(tokens):
            piece = tokens[start : start + self.chunk]
            input_ids = torch.as_tensor(piece, device=self.device)[None]
            positions = torch.arange(start, start + len(piece), device=self.device)[None]
            out = self._forward(input_ids=input_ids, position_ids=positions, kv_cache=self._cache_of(kv),
                                logits_to_keep=0 if all_logprobs else 1)
            kv = tuple((layer.keys, layer.values) for layer in self._cache_out(out).layers)
            logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
            if all_logprobs:
                following = torch.as_tensor(tokens[start + 1 : start + len(piece) + 1], device=self.device)
                token_logprobs[start + 1 : start + 1 + len(following)] = (
                    logprobs[torch.arange(len(following), device=self.device), following].cpu().numpy()
                )
            last = logprobs[-1]
            start += len(piece)
        self.cache.hits += reuse
        self.cache.misses += len(tokens) - reuse
        if self.reuse_kv:
            self.cache.add(CacheEntry(tokens=tokens.copy(), kv=kv, token_logprobs=token_logprobs.copy()))
        return kv, last, token_logprobs

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
        prefills = [self._prefill(p) for p in prompts]
        batch, width = len(requests), max(len(p) for p in prompts)
        # Left-pad every prompt's keys/values to one width so all rows decode together.
        layers = []
        for layer in range(len(prefills[0][0])):
            keys = prefills[0][0][layer][0]
            shape = (batch, keys.shape[1], width, keys.shape[3])
            k_all = torch.zeros(shape, dtype=keys.dtype, device=self.device)
            v_all = torch.zeros(shape, dtype=keys.dtype, device=self.device)
            for row, (kv, _, _) in enumerate(prefills):
                length = kv[layer][0].shape[2]
                k_all[row, :, width - length :] = kv[layer][0][0]
                v_all[row, :, width - length :] = kv[layer][1][0]
            layers.append((k_all, v_all))
        mask = torch.zeros((batch, width), dtype=torch.long, device=self.device)
        for row, prompt in enumerate(prompts):
            mask[row, width - len(prompt) :] = 1
        positions = torch.tensor([len(p) for p in prompts], device=self.device)
        next_logprobs = torch.stack([last for _, last, _ in prefills])
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


GQA_ATTENTION = "mas_sdpa_gqa"


def use_grouped_query_attention(model: Any) -> None:
    """On the CPU, let SDPA read grouped keys/values in place (`enable_gqa`).

    With an attention mask (which every batched or cached call here has), transformers'
    SDPA path copies each layer's keys and values once per query group (`repeat_kv`), to
    suit CUDA kernels that lack masked GQA. On the CPU those copies of the whole cached
    context cost ~15% of a scoring step (measured, SmolLM2: 9 query heads, 3 key/value
    heads); the math is the same either way.
    """
    import torch

    config = model.config
    groups = getattr(config, "num_attention_heads", 1) // max(1, getattr(config, "num_key_value_heads", None) or 1)
    if groups <= 1 or model.device.type != "cpu" or getattr(config, "_attn_implementation", None) != "sdpa":
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                  scaling: float | None = None, is_causal: bool | None = None, **_: Any) -> tuple[Any, None]:
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        causal = query.shape[2] > 1 and attention_mask is None and causal
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=causal,
            enable_gqa=True,
        )
        return out.transpose(1, 2).contiguous(), None

    AttentionInterface.register(GQA_ATTENTION, attention)
    AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)
    model.set_attn_implementation(GQA_ATTENTION)


def _groups(count: int, size: int) -> list[range]:
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


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
