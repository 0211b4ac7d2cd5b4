"""The local transformers backend on the real embedded model, and the wrapper backends.

The model is loaded once per test process (`models.load_model` keeps it). These tests hold
the fast paths (shared prompt keys/values, prefix cache, batched decoding) to the plain
computation, and check what the wrappers promise; none asserts that the 135M model plays well.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mas.agents.llm.backend import GenerateRequest, ScoreRequest
from mas.agents.llm.config import LocalBackendConfig, ReplayBackendConfig
from mas.agents.llm.factory import get_backend
from mas.agents.llm.kvcache import common_prefix
from mas.agents.llm.local import TransformersBackend, score_full_recompute
from mas.agents.llm.models import ModelLoadError, cache_root, embedded_gguf, embedded_model_dir, load_model
from mas.agents.llm.packed import CandidateTree
from mas.agents.llm.wrappers import (
    CachingBackend, RecordingBackend, ReplayBackend, ReplayMismatchError, call_record,
)
from mas.errors import MasError, StoreError
from mas.records import DecisionRecord, EpisodeRecord
from mas.store import RunStore

RULES = (
    "You play an iterated prisoner's dilemma. Each round both players choose COOPERATE or DEFECT. "
    "Both cooperate: 3 points each. Both defect: 1 point each. One defects: 5 for the defector, 0 for the other."
)


def chat(*user: str, system: str = RULES) -> tuple[dict[str, str], ...]:
    return ({"role": "system", "content": system},) + tuple({"role": "user", "content": u} for u in user)


@pytest.fixture
def backend(loaded) -> TransformersBackend:
    """A fresh backend (empty prefix cache) over the shared model."""
    return TransformersBackend(loaded)


# ----- loading ----------------------------------------------------------------------------
def test_embedded_model_is_found_in_the_package_converted_once_and_loaded_once(loaded) -> None:
    gguf = embedded_gguf()
    assert gguf.name.endswith(".gguf") and gguf.stat().st_size > 50_000_000
    directory = embedded_model_dir()
    assert directory.parent == cache_root()
    assert (directory / "config.json").is_file() and list(directory.glob("*.safetensors"))
    stamp = (directory / "config.json").stat().st_mtime_ns
    assert embedded_model_dir() == directory and (directory / "config.json").stat().st_mtime_ns == stamp
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}-")]  # no staging left
    assert load_model() is loaded
    assert get_backend(LocalBackendConfig()) is get_backend(LocalBackendConfig())
    assert get_backend(LocalBackendConfig()).info.model == "SmolLM2-135M-Instruct"


def test_bad_model_names_and_devices_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no model directory") as missing:
        load_model(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load") as empty:
        load_model(str(tmp_path / "empty"))
    with pytest.raises(MasError, match="backend.device") as device:
        load_model(device="tpu:7")
    for error in (missing, empty, device):
        assert "\n" not in str(error.value)


def test_a_model_directory_with_custom_code_is_refused_without_running_or_asking(tmp_path: Path, monkeypatch) -> None:
    import io
    import sys

    marker = tmp_path / "ran"
    model = tmp_path / "evil"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "model_type": "evil_lm", "architectures": ["EvilLM"],
        "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilLM"},
    }))
    (model / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('code ran')\n")
    # transformers asks "run the custom code? [y/N]" on stdin: someone answers y
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n" * 5))
    with pytest.raises(ModelLoadError, match=r"backend.model: '.*evil' needs custom code \(config.json has an auto_map\)") as error:
        load_model(str(model))
    assert "\n" not in str(error.value) and not marker.exists()
    assert sys.stdin.read() == "y\n" * 5  # nothing was asked


@pytest.mark.parametrize("config, weights", [
    ('{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}', b"\x10garbage"),
    ("[1, 2]", b""),
])
def test_a_malformed_lora_adapter_is_a_one_line_error(tmp_path: Path, config: str, weights: bytes) -> None:
    (tmp_path / "adapter_config.json").write_text(config)
    (tmp_path / "adapter_model.safetensors").write_bytes(weights)
    with pytest.raises(ModelLoadError, match=f"backend.adapter: cannot load '{tmp_path}': [A-Za-z]+") as error:
        load_model(adapter=str(tmp_path))
    assert "\n" not in str(error.value)


# ----- score ------------------------------------------------------------------------------
def test_score_agrees_with_full_recomputation_through_every_reuse_path(backend: TransformersBackend) -> None:
    rounds = ["Round 1. Your move?", "Round 1: you COOPERATE, they DEFECT.\nRound 2. Your move?"]
    # two agents sharing the rules; each agent's prompt grows round by round; candidates of 1-3 tokens
    requests = [ScoreRequest(chat(f"You are {who}. " + text), ("COOPERATE", "D"))
                for text in rounds for who in ("Alice", "Bob")]
    fast = backend.score(requests)
    plain = score_full_recompute(backend, requests)
    assert backend.cache.hits > backend.cache.misses  # the reuse paths were taken
    for f, p in zip(fast, plain):
        assert f.prompt_tokens == p.prompt_tokens
        assert f.candidate_tokens == p.candidate_tokens
        assert np.allclose(f.logprobs, p.logprobs, atol=2e-3)
        assert all(x < 0 for x in f.logprobs)
    tokenizer = backend.tokenizer
    assert fast[0].candidate_tokens == tuple(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in ("COOPERATE", "D"))
    assert fast[0].candidate_tokens[0] > 1  # a multi-token candidate takes the batched path


def test_candidates_sharing_tokens_share_tree_nodes() -> None:
    tree = CandidateTree.build([[5, 6, 7], [5, 6, 8], [5], [], [9, 6]])
    # nodes: [5] and [5, 6] shared by the first two, [9] for the last; one-token candidates need none
    assert tree.tokens == [5, 6, 9] and tree.parents == [-1, 0, -1] and tree.depths == [0, 1, 0]
    assert tree.paths == [[0, 1], [0, 1], [], [], [2]]


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "one-at-a-time"])
def test_mixed_prompts_long_prompts_and_shared_candidate_prefixes_score_as_computed_in_full(loaded, packed: bool) -> None:
    # chunk=24 packs at most 24 tokens per pass: the ~60-token prompts advance piece by piece
    backend = TransformersBackend(loaded, chunk=24)
    backend.packed = packed and backend.packed
    options = ("contribute 5", "contribute 10", "contribute", "punish nobody", "")
    first = [ScoreRequest(chat("Round 1. How much do you contribute?"), options),
             ScoreRequest(chat("You are Bob, a careful player who keeps promises.\nRound 1. How much?"), options[:2])]
    later = [ScoreRequest(chat("Round 1. How much do you contribute?\nYou gave 5, others gave 0.\nRound 2. Now?"), options),
             ScoreRequest(chat("Be brief.", system="Other rules entirely."), ("yes", "no"))]
    for requests in (first, later):  # the second call continues cached prompts, next to a fresh one
        fast = backend.score(requests)
        plain = score_full_recompute(backend, requests)
        for f, p in zip(fast, plain):
            assert f.candidate_tokens == p.candidate_tokens and f.prompt_tokens == p.prompt_tokens
            assert np.allclose(f.logprobs, p.logprobs, atol=2e-3)
    assert fast[0].logprobs[-1] == 0.0  # the empty candidate
    assert backend.cache.hits > 0


def test_prompts_that_differ_only_in_the_option_order_compute_their_common_part_once(backend: TransformersBackend) -> None:
    situation = ("Round 3. Last round you cooperated and they defected; the round before, both cooperated. "
                 "Messages received: <message from=\"bob\">I will cooperate from now on, I promise.</message>")
    requests = [ScoreRequest(chat(f"You are {who}. {situation}\nReply with exactly one of: {order}."), ("C", "D"))
                for who in ("Alice", "Carol") for order in ("C, D", "D, C")]
    prompts = [np.asarray(backend.prompt_ids(r.messages)) for r in requests]
    rules = common_prefix(prompts[0], prompts[2])
    per_agent = [common_prefix(prompts[0], prompts[1]), common_prefix(prompts[2], prompts[3])]
    fast = backend.score(requests)
    # the rules once, each agent's situation once, then each order's own tail (+1 token each,
    # recomputed where a prompt leaves the cached prefix)
    unique = rules + sum(a - rules for a in per_agent) + sum(len(p) - per_agent[i // 2] for i, p in enumerate(prompts))
    assert unique <= backend.cache.misses <= unique + len(prompts)
    assert backend.cache.misses < 0.6 * sum(len(p) for p in prompts)
    for f, p in zip(fast, score_full_recompute(backend, requests)):
        assert np.allclose(f.logprobs, p.logprobs, atol=2e-3)


def test_many_similar_prompts_take_a_few_passes(backend: TransformersBackend, monkeypatch) -> None:
    # 24 prompts that differ a token or two apart from the rules: shared prefixes of shared
    # prefixes must not peel off one token per pass
    from mas.agents.llm import local

    passes = []
    real = local.forward_packed
    monkeypatch.setattr(local, "forward_packed", lambda model, segments, device: passes.append(len(segments)) or real(model, segments, device))
    requests = [ScoreRequest(chat(f"You are player {i}. Round 1. Your move?"), ("C", "D")) for i in range(24)]
    backend.score(requests)
    assert passes == [1, 24]  # the rules, then every prompt with its candidates


def test_repeated_scores_are_stable_and_without_reuse_identical(loaded) -> None:
    plain = TransformersBackend(loaded, reuse_kv=False)
    request = ScoreRequest(chat("Round 4. Your move?"), ("COOPERATE", "DEFECT"))
    first, second = plain.score([request, request])
    # the same prompt twice in one packed pass: equal up to where the matrix product puts its rows
    assert np.allclose(first.logprobs, second.logprobs, atol=1e-5, rtol=0) and len(plain.cache) == 0
    assert plain.score([request, request]) == [first, second]  # the same call again: bit for bit


def test_candidate_logprob_is_the_sum_of_its_token_logprobs(backend: TransformersBackend) -> None:
    messages = chat("Which move do you pick?")
    score = backend.score([ScoreRequest(messages, ("DEFECT now",))])[0]
    prompt = backend.prompt_ids(messages)
    cand = backend.text_ids("DEFECT now")
    values = backend.token_logprobs([prompt + cand])[0]
    assert math.isnan(values[0]) and not np.isnan(values[1:]).any()
    assert math.isclose(float(values[len(prompt):].sum()), score.logprobs[0], abs_tol=2e-3)


# ----- generate ---------------------------------------------------------------------------
def test_batched_generation_equals_transformers_greedy_generation(backend: TransformersBackend) -> None:
    import torch

    prompts = [chat("Say hello to your opponent."), chat("Round 2. They defected. Write one sentence to them.", system="Be brief.")]
    batched = backend.generate([GenerateRequest(p, max_tokens=8) for p in prompts])
    for messages, got in zip(prompts, batched):
        ids = torch.tensor([backend.prompt_ids(messages)])
        with torch.inference_mode():
            out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
        reference = out[0, ids.shape[1]:].tolist()
        eos_free = [t for t in reference if t not in backend._eos_ids]
        assert got.text == backend.tokenizer.decode(eos_free, skip_special_tokens=True)
        assert got.completion_tokens == len(eos_free)
        assert got.prompt_tokens == ids.shape[1]
        assert got.finish_reason == ("length" if len(eos_free) == 8 else "stop")


def test_sampling_follows_the_request_seed_whatever_the_batch(backend: TransformersBackend) -> None:
    ask = chat("Write a short message to the other player.")
    seeded = GenerateRequest(ask, max_tokens=8, temperature=1.0, seed=7)
    alone = backend.generate([seeded])[0]
    in_batch = backend.generate([GenerateRequest(chat("Other."), max_tokens=3, temperature=1.0, seed=1), seeded])[1]
    other_seed = backend.generate([GenerateRequest(ask, max_tokens=8, temperature=1.0, seed=8)])[0]
    assert alone == in_batch
    assert alone.text != other_seed.text


def test_stop_strings_and_token_limit_end_a_generation(backend: TransformersBackend) -> None:
    ask = chat("Count from one to twenty in words, separated by commas.")
    free = backend.generate([GenerateRequest(ask, max_tokens=12)])[0]
    assert free.finish_reason == "length" and free.completion_tokens == 12
    stop = free.text.strip()[len(free.text.strip()) // 2]  # a character the greedy reply does contain
    cut = backend.generate([GenerateRequest(ask, max_tokens=12, stop=(stop,))])[0]
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert free.text.startswith(cut.text) and cut.completion_tokens < 12


# ----- wrappers ---------------------------------------------------------------------------
def test_caching_answers_identical_requests_once_and_recording_keeps_every_call(backend: TransformersBackend) -> None:
    inner = RecordingBackend(backend)  # sees only what reaches the model
    outer = RecordingBackend(CachingBackend(inner))
    a = ScoreRequest(chat("Round 1. Your move?"), ("COOPERATE", "DEFECT"))
    b = ScoreRequest(chat("Round 2. Your move?"), ("COOPERATE", "DEFECT"))
    first = outer.score([a, b, a])
    second = outer.score([b])
    assert first[0] == first[2] and second[0] == first[1]
    assert [c["request"]["messages"][-1]["content"] for c in inner.take()] == ["Round 1. Your move?", "Round 2. Your move?"]
    recorded = outer.take()
    assert len(recorded) == 4 and outer.take() == []
    assert recorded[0] == json.loads(json.dumps(recorded[0]))  # JSON-able as stored
    assert recorded[0]["op"] == "score" and recorded[0]["response"]["logprobs"] == list(first[0].logprobs)
    # sampled generations without a seed are meant to differ: never cached
    unseeded = GenerateRequest(chat("Hi"), max_tokens=2, temperature=1.0)
    outer.generate([unseeded, unseeded])
    assert len(inner.take()) == 2


def _store_with_calls(run_dir: Path, calls_per_decision: list[list[dict]]) -> None:
    store = RunStore.create(run_dir, {"name": "recorded"}, 0, [("a", {"type": "llm"}, "")])
    decisions = tuple(DecisionRecord(0, step, step, "a", False, None, {"calls": calls}) for step, calls in enumerate(calls_per_decision))
    record = EpisodeRecord(episode=0, seed=0, decisions=decisions)
    store.write_episode(record)
    store.close()


def test_replay_answers_recorded_requests_in_order_without_a_model(backend: TransformersBackend, tmp_path: Path) -> None:
    recorder = RecordingBackend(backend)
    score_request = ScoreRequest(chat("Round 1. Your move?"), ("COOPERATE", "DEFECT"))
    sampled = GenerateRequest(chat("Say something."), max_tokens=6, temperature=1.0, seed=3)
    scores = recorder.score([score_request])
    first = recorder.generate([sampled])
    again = recorder.generate([GenerateRequest(chat("Say something."), max_tokens=6, temperature=1.0, seed=4)])
    calls = recorder.take()
    # the same request asked twice in the recorded run, answered differently each time
    second_answer = call_record("generate", sampled, again[0])
    _store_with_calls(tmp_path / "run", [calls[:1], calls[1:2], [second_answer]])

    replay = get_backend(ReplayBackendConfig(run=str(tmp_path / "run")))
    assert isinstance(replay, ReplayBackend) and replay.info.kind == "replay"
    assert replay.score([score_request]) == scores
    assert replay.generate([sampled, sampled]) == [first[0], again[0]]
    with pytest.raises(ReplayMismatchError, match="asked more often than recorded"):
        replay.generate([sampled])
    with pytest.raises(ReplayMismatchError, match="never recorded") as never:
        replay.score([ScoreRequest(chat("Round 9. Your move?"), ("COOPERATE", "DEFECT"))])
    assert "\n" not in str(never.value)


def test_replay_of_a_missing_or_empty_run_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no recorded run"):
        ReplayBackend(tmp_path / "absent")
    _store_with_calls(tmp_path / "empty", [[]])
    with pytest.raises(StoreError, match="recorded no LLM calls"):
        ReplayBackend(tmp_path / "empty")
