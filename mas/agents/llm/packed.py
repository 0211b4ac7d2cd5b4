"""Packed forward passes: many prompts, each with its own cached past, in one flat sequence.

The local backend's work is mostly "continue this agent's cached keys/values with its few
new tokens, then score its candidate actions". A padded batch wastes compute on pads
(prompts differ in length) and memory traffic on copying every cached past into one padded
tensor. Here instead all new tokens of all prompts, and the tokens of their candidates, are
laid end to end in one sequence of batch 1:

    [ prompt A's new tokens | A's candidate tree | prompt B's new tokens | B's tree | ... ]

The linear layers (~90% of the FLOPs) see one big matrix. Attention is done per segment by
a registered attention function (`mas_sdpa_gqa`): each segment's queries attend to its own
past (read in place, never padded) and its own new tokens, with a mask that is causal over
the prompt and a tree over the candidates: a candidate token sees the whole prompt and its
own earlier tokens, not the other candidates. Candidates that share leading tokens share
those tree nodes ("contribute 5" and "contribute 10" compute "contribute" once). Positions
are passed explicitly, so every token gets the rotary position it would have alone.

Exact up to float rounding (a test holds it to the plain full recomputation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

KV = tuple[tuple[Any, Any], ...]  # per layer: (keys, values), each [1, kv_heads, tokens, head_dim]

ATTENTION = "mas_sdpa_gqa"
LAYOUT_KWARG = "mas_layout"


@dataclass
class Segment:
    """One prompt's work in a packed pass.

    Args:
        past: keys/values of the tokens before `tokens` (None: `tokens` start the prompt).
        tokens: the new prompt tokens (at least one).
        candidates: token lists to score as continuations of the prompt.
        all_logprobs: keep the next-token log-probs after every new token, not just the last.
    """

    past: KV | None
    tokens: np.ndarray
    candidates: Sequence[Sequence[int]] = ()
    all_logprobs: bool = False

    @property
    def past_len(self) -> int:
        return 0 if self.past is None else int(self.past[0][0].shape[2])

    @cached_property
    def tree(self) -> "CandidateTree":
        return CandidateTree.build(self.candidates)

    @property
    def size(self) -> int:
        """Tokens the segment adds to a packed pass (prompt plus candidate tree)."""
        return len(self.tokens) + len(self.tree)


@dataclass
class SegmentResult:
    """Keys/values of past + new tokens, next-token log-probs ([1 or n, vocab]: after the last
    new token, or after each), and each candidate's total log-likelihood."""

    kv: KV
    logprobs: Any
    candidate_logprobs: list[float] = field(default_factory=list)


@dataclass
class CandidateTree:
    """The candidates' tokens as a trie. Node i stands for a candidate prefix c[:k] (k >= 1)
    that is followed by more tokens; it is fed token c[k-1] at depth k-1, so its output
    predicts c[k]. Candidates' last tokens need no node: nothing is predicted after them."""

    tokens: list[int]
    parents: list[int]  # -1: the node hangs off the prompt's last token
    depths: list[int]
    paths: list[list[int]]  # per candidate: the node whose output predicts each token after the first

    @classmethod
    def build(cls, candidates: Sequence[Sequence[int]]) -> "CandidateTree":
        index: dict[tuple[int, ...], int] = {}
        tree = cls([], [], [], [])
        for cand in candidates:
            path = []
            for k in range(1, len(cand)):
                prefix = tuple(cand[:k])
                if prefix not in index:
                    index[prefix] = len(tree.tokens)
                    tree.tokens.append(int(cand[k - 1]))
                    tree.parents.append(index.get(prefix[:-1], -1))
                    tree.depths.append(k - 1)
                path.append(index[prefix])
            tree.paths.append(path)
        return tree

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class _Placed:
    """Where a segment sits in the packed sequence, and its attention mask."""

    segment: Segment
    tree: CandidateTree
    start: int
    mask: Any  # [queries, past + queries] bool, or None for plain causal attention
    kv: list[tuple[Any, Any]] = field(default_factory=list)

    @property
    def stop(self) -> int:
        return self.start + len(self.segment.tokens) + len(self.tree)


class PackedLayout:
    """Handed to the attention function (as a forward kwarg) for one packed pass."""

    def __init__(self, placed: list[_Placed]) -> None:
        self.placed = placed

    def attend(self, layer: int, query: Any, key: Any, value: Any, scaling: float | None) -> Any:
        import torch

        outputs = []
        for place in self.placed:
            a, b = place.start, place.stop
            keys, values = key[:, :, a:b], value[:, :, a:b]
            if place.segment.past is not None:
                past_keys, past_values = place.segment.past[layer]
                keys = torch.cat([past_keys, keys], dim=2)
                values = torch.cat([past_values, values], dim=2)
            elif len(self.placed) > 1:  # keep only this segment's part alive in the cache
                keys, values = keys.contiguous(), values.contiguous()
            outputs.append(torch.nn.functional.scaled_dot_product_attention(
                query[:, :, a:b], keys, values, attn_mask=place.mask, is_causal=place.mask is None, scale=scaling,
                enable_gqa=True,
            ))
            kept = place.segment.past_len + len(place.segment.tokens)
            place.kv.append((keys[:, :, :kept], values[:, :, :kept]))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return out.transpose(1, 2).contiguous()


def forward_packed(model: Any, segments: Sequence[Segment], device: Any) -> list[SegmentResult]:
    """One forward pass over `segments` laid end to end (see the module docstring).

    The model must use the `mas_sdpa_gqa` attention (`install_attention`)."""
    import torch

    placed, ids, positions, keep = [], [], [], []
    start = 0
    for segment in segments:
        tree = segment.tree
        past, n, m = segment.past_len, len(segment.tokens), len(tree)
        if n == 0:
            raise ValueError("a packed segment needs at least one new token")
        ids.append(np.asarray(segment.tokens, dtype=np.int64))
        ids.append(np.asarray(tree.tokens, dtype=np.int64))
        positions.append(np.arange(past, past + n))
        positions.append(past + n + np.asarray(tree.depths, dtype=np.int64))
        keep.extend(range(start, start + n) if segment.all_logprobs else [start + n - 1])
        keep.extend(range(start + n, start + n + m))
        placed.append(_Placed(segment, tree, start, _mask(past, n, tree, device)))
        start += n + m
    layout = PackedLayout(placed)
    out = model(
        input_ids=torch.as_tensor(np.concatenate(ids), device=device)[None],
        position_ids=torch.as_tensor(np.concatenate(positions), device=device)[None],
        logits_to_keep=torch.as_tensor(keep, device=device),
        use_cache=False,
        **{LAYOUT_KWARG: layout},
    )
    logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
    results, row = [], 0
    for place in placed:
        segment, tree = place.segment, place.tree
        kept = len(segment.tokens) if segment.all_logprobs else 1
        prompt_logprobs = logprobs[row : row + kept]
        node_logprobs = logprobs[row + kept : row + kept + len(tree)]
        row += kept + len(tree)
        last = prompt_logprobs[-1]
        totals = []
        for cand, path in zip(segment.candidates, tree.paths):
            if not cand:
                totals.append(0.0)
                continue
            total = last[cand[0]]
            if path:
                total = total + node_logprobs[path, list(cand[1:])].sum()
            totals.append(float(total))
        results.append(SegmentResult(kv=tuple(place.kv), logprobs=prompt_logprobs, candidate_logprobs=totals))
    return results


def _mask(past: int, n: int, tree: CandidateTree, device: Any) -> Any:
    """[n + m, past + n + m] bool: the past for everyone, causal over the prompt, the
    prompt plus own ancestors for tree nodes. None where plain causal attention is exact."""
    import torch

    m = len(tree)
    if past == 0 and m == 0:
        return None
    mask = torch.zeros((n + m, past + n + m), dtype=torch.bool)
    mask[:, :past] = True
    mask[:n, past : past + n] = torch.ones((n, n), dtype=torch.bool).tril()
    mask[n:, past : past + n] = True
    for node in range(m):
        ancestor = node
        while ancestor >= 0:
            mask[n + node, past + n + ancestor] = True
            ancestor = tree.parents[ancestor]
    return mask.to(device)


def install_attention(model: Any) -> bool:
    """Give `model` the `mas_sdpa_gqa` attention, which does packed passes when a layout is
    passed and plain SDPA otherwise. Only for models whose attention is plain SDPA over the
    whole context (no sliding window): returns False, and changes nothing, for others.

    Without a layout, on the CPU, it also lets SDPA read grouped keys/values in place
    (`enable_gqa`): transformers' SDPA path otherwise copies each layer's keys and values
    once per query group under a mask, ~15% of a scoring step on SmolLM2 (measured).
    """
    import torch

    config = model.config
    implementation = getattr(config, "_attn_implementation", None)
    if implementation == ATTENTION:
        return True
    if implementation != "sdpa" or getattr(config, "sliding_window", None):
        return False
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                  scaling: float | None = None, is_causal: bool | None = None, **kwargs: Any) -> tuple[Any, None]:
        layout = kwargs.pop(LAYOUT_KWARG, None)
        if layout is not None:
            return layout.attend(module.layer_idx, query, key, value, scaling), None
        if query.device.type != "cpu":
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                          scaling=scaling, is_causal=is_causal, **kwargs)
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        causal = query.shape[2] > 1 and attention_mask is None and causal
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=causal,
            enable_gqa=True,
        )
        return out.transpose(1, 2).contiguous(), None

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model.set_attn_implementation(ATTENTION)
    return True
