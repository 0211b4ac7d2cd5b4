"""The OpenAI-compatible HTTP backend against the real `mas serve` on 127.0.0.1.

No mocks: the server is the real one over the embedded model, in a thread of this process
(sharing the loaded model) or, where it must die mid-run, as a `mas serve` subprocess.
Faults (slow first answers, "503 busy") are the server's own test options.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mas.agents.llm.backend import GenerateRequest, ScoreRequest
from mas.agents.llm.config import OpenAIBackendConfig
from mas.agents.llm.http import LLMServerError, OpenAIBackend
from mas.agents.llm.local import TransformersBackend
from mas.agents.llm.server import ModelServer
from mas.agents.llm.wrappers import RecordingBackend
from mas.errors import MasError

NAME = "smol"
ASK = ({"role": "system", "content": "You play the prisoner's dilemma: COOPERATE or DEFECT."},
       {"role": "user", "content": "Round 2. The other player defected. Your move?"})


@pytest.fixture
def serve(loaded):
    """Start a real server on a free port; returns a function (server options) -> server."""
    servers = []

    def start(**faults) -> ModelServer:
        server = ModelServer(TransformersBackend(loaded), NAME, port=0, **faults).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def client(server_url: str, backoff: float = 0.01, **config) -> OpenAIBackend:
    return OpenAIBackend(OpenAIBackendConfig(base_url=f"{server_url}/v1", model=config.pop("model", NAME), **config), backoff=backoff)


def test_generate_and_score_over_http_match_the_local_backend(serve, loaded) -> None:
    server = serve()
    remote = client(server.address)
    local = TransformersBackend(loaded)
    generate = [GenerateRequest(ASK, max_tokens=8), GenerateRequest(ASK[:1] + ({"role": "user", "content": "Greet them."},), max_tokens=6)]
    assert remote.generate(generate) == local.generate(generate)
    score = [ScoreRequest(ASK, ("COOPERATE", "DEFECT")), ScoreRequest(ASK[:1] + ({"role": "user", "content": "Round 1."},), ("C", "D"))]
    got, want = remote.score(score), local.score(score)
    for g, w in zip(got, want):
        assert (g.prompt_tokens, g.candidate_tokens) == (w.prompt_tokens, w.candidate_tokens)
        assert np.allclose(g.logprobs, w.logprobs, atol=2e-3)
    assert remote.info.kind == "openai" and remote.info.details == {"base_url": f"{server.address}/v1"}
    remote.close()


def test_unknown_model_names_the_served_ones(serve) -> None:
    server = serve()
    with pytest.raises(LLMServerError, match=f"does not know model 'gpt-9'.*it serves: {NAME}") as error:
        client(server.address, model="gpt-9").generate([GenerateRequest(ASK, max_tokens=2)])
    assert "\n" not in str(error.value)


def test_unreachable_server_fails_after_the_retries_with_one_line() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = client(f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(LLMServerError, match=r"failed after 3 tries \(cannot connect") as error:
        backend.score([ScoreRequest(ASK, ("C", "D"))])
    assert backend.retries == 2 and "\n" not in str(error.value)


def test_slow_server_times_out_then_the_retry_succeeds(serve) -> None:
    # the first answer comes after 30 s: the client gives up after 2 s and asks again
    server = serve(delay_s=30, delay_first=1)
    backend = client(server.address, timeout=2, max_retries=2)
    reply = backend.generate([GenerateRequest(ASK, max_tokens=3)])[0]
    assert backend.retries == 1 and reply.completion_tokens > 0
    slow = serve(delay_s=30, delay_first=1)
    with pytest.raises(LLMServerError, match=r"failed after 1 tries \(no answer within 2 s\)"):
        client(slow.address, timeout=2, max_retries=0).generate([GenerateRequest(ASK, max_tokens=3)])


def test_busy_server_is_retried_with_backoff(serve) -> None:
    server = serve(fail_first=2)
    backend = client(server.address, max_retries=3)
    assert backend.score([ScoreRequest(ASK, ("C", "D"))])[0].candidate_tokens == (1, 1)
    assert backend.retries == 2


def test_api_key_comes_from_the_environment_and_is_never_recorded(serve, monkeypatch) -> None:
    server = serve()
    with pytest.raises(LLMServerError, match="MAS_TEST_KEY.*not set"):
        client(server.address, api_key_env="MAS_TEST_KEY")
    monkeypatch.setenv("MAS_TEST_KEY", "sk-secret-123")
    recording = RecordingBackend(client(server.address, api_key_env="MAS_TEST_KEY"))
    recording.generate([GenerateRequest(ASK, max_tokens=2)])
    recording.score([ScoreRequest(ASK, ("C", "D"))])
    assert "sk-secret" not in repr(recording.take()) + repr(recording.info)


def test_mas_serve_cli_rejects_a_bad_port_in_one_line(capsys) -> None:
    from mas.cli import main

    assert main(["serve", "--port", "70000"]) == 1
    assert capsys.readouterr().err.strip() == "mas: error: --port: expected 0..65535, got 70000"


def _start_mas_serve() -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "mas.cli", "serve", "--port", "0", "--name", NAME],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + 120
    line = proc.stdout.readline() if proc.stdout else ""
    if "http://" not in line or time.monotonic() > deadline:
        proc.kill()
        pytest.fail(f"mas serve did not start: {line!r}")
    url = line.split(" on ", 1)[1].split("/v1", 1)[0]
    return proc, url


def test_server_dying_mid_run_gives_a_clear_error_and_keeps_finished_episodes(tmp_path: Path) -> None:
    from mas.runner import run
    from mas.scenario import parse_scenario
    from mas.store import RunStore

    proc, url = _start_mas_serve()
    try:
        policy = {"type": "llm", "backend": {"kind": "openai", "base_url": f"{url}/v1", "model": NAME, "max_retries": 1},
                  "mode": "score", "talk": False}
        scenario = parse_scenario({
            "name": "pd_http",
            "game": {"kind": "normal_form", "actions": ["C", "D"], "cooperate": "C", "defect": "D",
                     "payoffs": {"C,C": [3, 3], "C,D": [0, 5], "D,C": [5, 0], "D,D": [1, 1]}},
            "rounds": 2,
            "agents": [{"id": "a", "policy": policy}, {"id": "b", "policy": policy}],
        })

        def kill_after_first(record) -> None:
            if record.episode == 0:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

        with pytest.raises(MasError, match=f"LLM server at {url}/v1 failed after 2 tries") as error:
            run(scenario, 3, seed=1, out_dir=tmp_path / "run", on_episode=kill_after_first)
        assert "\n" not in str(error.value)
        with RunStore.open(tmp_path / "run") as store:
            assert store.episodes_done() == [0]
            assert store.query("SELECT COUNT(*) FROM decisions WHERE episode = 0")[0][0] == 4
    finally:
        proc.kill()
        proc.wait()
