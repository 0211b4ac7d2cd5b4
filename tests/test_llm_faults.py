"""A broken model server never becomes a confident decision.

The peer is a real HTTP server on 127.0.0.1 (the standard library's, in a thread) that
speaks the OpenAI/vLLM score protocol `mas serve` speaks, but answers with NaN, infinite
or positive log-probabilities, with bodies that are not JSON, late, or a byte at a time.
Runs go through `mas.runner.run` and the store: each fault ends as a recorded fallback
with its reason, or as a one-line error, never as a decision stored with status "ok".
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mas.agents.llm.backend import Scores
from mas.agents.llm.policy import softmax
from mas.errors import MasError

CANDIDATE_TOKENS = {"C": [10], "D": [11]}
PROMPT = [1, 2, 3]


class FakeServer:
    """An OpenAI-compatible score server whose /v1/completions answer is `fault`:
    "none" (valid), "nan", "-inf", "+inf", "positive" (log-probabilities of candidate C),
    "not_json", "slow" (answers after 3 s) or "drip" (one byte every 0.1 s)."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.stopped = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/tokenize":
                    tokens = CANDIDATE_TOKENS.get(body.get("prompt"), PROMPT)
                    self._send(json.dumps({"tokens": tokens}).encode())
                else:
                    self._send(server.completions(body["prompt"]))

            def _send(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.fault == "drip" and b"choices" in data:
                    for byte in data:
                        if server.stopped.wait(0.1):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def completions(self, prompts: list[list[int]]) -> bytes:
        bad = {"nan": math.nan, "-inf": -math.inf, "+inf": math.inf, "positive": 0.7}.get(self.fault)
        choices = []
        for index, tokens in enumerate(prompts):
            values: list[float | None] = [None] + [-0.25] * (len(tokens) - 1)
            if bad is not None and tokens[-1] == CANDIDATE_TOKENS["C"][0]:
                values[-1] = bad
            choices.append({"index": index, "logprobs": {"token_logprobs": values}})
        if self.fault == "not_json":
            return b"<html>502 Bad Gateway</html>"
        if self.fault == "slow" and self.stopped.wait(3.0):
            return b"{}"
        return json.dumps({"choices": choices}).encode()  # NaN and Infinity as Python writes them

    def stop(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server():
    from mas.agents.llm.factory import close_all

    servers: list[FakeServer] = []

    def start(fault: str) -> FakeServer:
        servers.append(FakeServer(fault))
        return servers[-1]

    yield start
    close_all()
    for server in servers:
        server.stop()


def _play(url: str, temperature: float, out: Path, **backend: Any) -> list[dict[str, Any]]:
    """Two LLM agents on the server for two rounds; the stored decision records."""
    from mas.runner import run
    from mas.scenario import parse_scenario
    from mas.store import RunStore

    policy = {"type": "llm", "mode": "score", "temperature": temperature, "talk": False,
              "backend": {"kind": "openai", "base_url": url, "model": "fake", "max_retries": 0, **backend}}
    scenario = parse_scenario({
        "name": "pd_fake_server",
        "game": {"kind": "normal_form", "actions": ["C", "D"], "cooperate": "C", "defect": "D",
                 "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}},
        "rounds": 2,
        "agents": [{"id": "a", "policy": policy}, {"id": "b", "policy": policy}],
    })
    run(scenario, 1, seed=3, out_dir=out)  # a run that fails before storing an episode leaves no store
    with RunStore.open(out) as store:
        rows = store.query("SELECT record FROM decisions")
    return [json.loads(text, parse_constant=_refuse_constant) for (text,) in rows]


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"the store wrote {name}, which is not JSON (browsers and jq refuse it)")


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_valid_scores_from_the_fake_server_are_decisions(fake_server, tmp_path: Path, temperature: float) -> None:
    # the control: the fake server speaks the protocol, so the faults below are the only difference
    records = _play(fake_server("none").url, temperature, tmp_path / "run")
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    assert all(math.isclose(sum(r["distribution"].values()), 1.0) for r in records)


@pytest.mark.parametrize("fault, shown", [("nan", "nan"), ("-inf", "-inf"), ("+inf", "inf"), ("positive", "0.7")])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_non_log_probabilities_become_recorded_fallbacks(fake_server, tmp_path: Path, fault: str, shown: str,
                                                         temperature: float) -> None:
    records = _play(fake_server(fault).url, temperature, tmp_path / "run")
    assert len(records) == 4
    for record in records:
        assert record["status"] == "fallback" and record["action"] == "C"  # the first legal action
        assert "distribution" not in record  # no made-up certainty
        assert f"log-probability {shown} for candidate 'C'" in record["error"]
    if fault in ("nan", "-inf", "+inf"):  # the server's raw value stays visible, spelled as a string
        raw = json.dumps([r.get("calls") for r in records])
        assert {"nan": '"NaN"', "-inf": '"-Infinity"', "+inf": '"Infinity"'}[fault] in raw, raw[:300]


@pytest.mark.parametrize("fault, message", [
    ("not_json", "answered .*/completions with something that is not JSON"),
    ("slow", r"failed after 1 tries \(no answer within 0.5 s\)"),
    ("drip", r"failed after 1 tries \(no answer within 0.5 s\)"),
])
def test_unreadable_or_late_replies_are_one_line_errors(fake_server, tmp_path: Path, fault: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(MasError, match=message) as error:
        _play(fake_server(fault).url, 0.0, tmp_path / "run", timeout=0.5)
    assert "\n" not in str(error.value)
    assert time.monotonic() - started < 5  # a dripping reply is cut at the time-out too


def test_scores_name_what_is_not_a_log_probability() -> None:
    def problem(*values: Any) -> str:
        return Scores(logprobs=values, candidate_tokens=(1,) * len(values), prompt_tokens=3).problem(("C", "D", "E")[: len(values)])

    assert problem(-0.1, -2.0) == "" and problem(0.0005, -3.0) == ""  # rounding above 0 is allowed
    assert problem(math.nan, -1.0) == "log-probability nan for candidate 'C' (must be a finite number <= 0)"
    assert "log-probability 0.01 for candidate 'D'" in problem(-1.0, 0.01)
    assert "log-probability str" in problem("-1", -1.0)
    assert Scores((-1.0,), (1,), 3).problem(("C", "D")) == "1 log-probabilities for 2 candidates"


def test_softmax_refuses_what_argmax_would_call_certain() -> None:
    for values in ([math.nan, -1.0], [-math.inf, -math.inf]):
        for temperature in (0.0, 1.0):
            with pytest.raises(ValueError, match="must be finite"):
                softmax(np.array(values), temperature)
