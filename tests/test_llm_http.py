"""The OpenAI-compatible HTTP backend against the real `mas serve` on 127.0.0.1.

No mocks: the server is the real one over the embedded model, in a thread of this process
(sharing the loaded model) or, where it must die mid-run, as a `mas serve` subprocess.
Faults (slow first answers, "503 busy") are the server's own test options.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def _raw(server: ModelServer, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
         length: str | None = None) -> tuple[int, dict]:
    """One request on a fresh connection, with any Content-Length; (status, JSON reply)."""
    host, port = server.httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body or length is not None:
            conn.putheader("Content-Length", str(len(body)) if length is None else length)
        conn.endheaders(body or None)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_malformed_requests_are_400_with_a_json_error(serve) -> None:
    server = serve()
    chat = '{"model": "%s", "messages": [{"role": "user", "content": "hi"}], ' % NAME
    bad = {
        "NaN temperature": (chat + '"temperature": NaN}').encode(),
        "infinite temperature": (chat + '"temperature": Infinity}').encode(),
        "huge seed": (chat + '"seed": 1%s}' % ("0" * 30)).encode(),
        "boolean seed": (chat + '"seed": true}').encode(),
        "huge max_tokens": (chat + '"max_tokens": 1000000000}').encode(),
        "stop of a number": (chat + '"stop": 5}').encode(),
        "deep JSON": b"[" * 100000 + b"]" * 100000,
    }
    for what, body in bad.items():
        status, reply = _raw(server, "POST", "/v1/chat/completions", body)
        assert (status, reply["error"]["type"]) == (400, "invalid_request_error"), what
    for length in ("abc", "-5", "1e3", "99999999999"):
        status, reply = _raw(server, "POST", "/v1/completions", b'{"model": "smol"}', length=length)
        assert status == 400 and "Content-Length" in reply["error"]["message"], length


def test_a_stalled_upload_or_idle_connection_is_closed_after_the_read_timeout(serve) -> None:
    server = serve(read_timeout=0.5)
    for sent in (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\"", b""):
        with socket.create_connection(server.httpd.server_address[:2], timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(sent)
            assert sock.recv(1024) == b""  # the server hung up (the client's 10 s would raise)
            assert time.monotonic() - started < 5


def test_a_body_dripped_inside_each_read_timeout_is_cut_at_the_io_deadline(serve) -> None:
    # one byte every 0.3 s never trips a 0.5 s read time-out: 100 bytes would hold the
    # thread 30 s; the total deadline (1 s) frees it
    server = serve(read_timeout=0.5, io_deadline=1.0)
    with socket.create_connection(server.httpd.server_address[:2], timeout=10) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        stop = threading.Event()

        def drip() -> None:
            while not stop.is_set():
                try:
                    sock.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.3)

        dripper = threading.Thread(target=drip, daemon=True)
        started = time.monotonic()
        dripper.start()
        try:
            while sock.recv(4096):  # an error answer may come first; then the server hangs up
                pass
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - started
        stop.set()
    assert 0.8 < elapsed < 4, elapsed


def test_connections_beyond_max_connections_wait_their_turn_and_are_served(serve) -> None:
    server = serve(read_timeout=1.5, max_connections=2)
    address = server.httpd.server_address[:2]
    idle = [socket.create_connection(address, timeout=10) for _ in range(2)]  # hold both threads
    try:
        time.sleep(0.3)
        started = time.monotonic()
        status, reply = _raw(server, "GET", "/health")  # queued in the backlog, not reset
        waited = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    assert (status, reply) == (200, {"status": "ok"})
    assert waited > 0.8  # it was served only once an idle connection timed out
    assert server.httpd.peak == 2


def test_api_key_is_required_when_set_and_the_http_backend_sends_it(serve, monkeypatch) -> None:
    server = serve(api_key="sk-serve-42")
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": "sk-serve-42"}):
        status, reply = _raw(server, "GET", "/v1/models", headers=headers)
        assert status == 401 and reply["error"]["code"] == "invalid_api_key" and "sk-serve" not in json.dumps(reply)
    status, _ = _raw(server, "POST", "/v1/chat/completions", b'{"model": "smol"}')
    assert status == 401 and server.requests_served == 0  # refused before any route or the model
    assert _raw(server, "GET", "/health")[0] == 200
    assert _raw(server, "GET", "/v1/models", headers={"Authorization": "Bearer sk-serve-42"})[0] == 200
    with pytest.raises(LLMServerError, match=r"refused the request \(HTTP 401: missing or wrong API key.*set backend.api_key_env"):
        client(server.address).generate([GenerateRequest(ASK, max_tokens=1)])
    monkeypatch.setenv("MAS_TEST_KEY", "sk-serve-42")
    assert client(server.address, api_key_env="MAS_TEST_KEY").generate([GenerateRequest(ASK, max_tokens=1)])[0].completion_tokens == 1


def test_32_concurrent_clients_get_no_connection_resets(serve) -> None:
    # new connections in bursts (each request opens one): with a listen backlog of 5 the
    # kernel drops or resets some (here: ~2.5% of connections waited 1 s for a SYN resend)
    server = serve()
    nan_temperature = ('{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}' % NAME).encode()
    outcomes: list[object] = []
    waited: list[float] = []

    def worker(index: int) -> None:
        for i in range(10):
            started = time.monotonic()
            try:
                if (index + i) % 2:
                    outcomes.append(_raw(server, "GET", "/v1/models")[0])
                else:
                    outcomes.append(_raw(server, "POST", "/v1/chat/completions", nan_temperature)[0])
            except OSError as exc:
                outcomes.append(exc.__class__.__name__)
            waited.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    reply = client(server.address).generate([GenerateRequest(ASK, max_tokens=2)])[0]  # a real one among them
    for thread in threads:
        thread.join(timeout=60)
    assert reply.completion_tokens > 0 and time.monotonic() - started < 60
    assert sorted(map(str, outcomes)) == ["200"] * 160 + ["400"] * 160
    assert sum(w >= 1.0 for w in waited) <= 2  # no SYN dropped from a full backlog (allowing for a busy CI box)


def test_mas_serve_cli_rejects_a_bad_port_in_one_line(capsys) -> None:
    from mas.cli import main

    assert main(["serve", "--port", "70000"]) == 1
    assert capsys.readouterr().err.strip() == "mas: error: --port: expected 0..65535, got 70000"
    assert main(["serve", "--max-connections", "0"]) == 1
    assert capsys.readouterr().err.strip() == "mas: error: --max-connections: expected 1..10000, got 0"
    assert main(["serve", "--io-deadline", "nan"]) == 1
    assert capsys.readouterr().err.strip() == "mas: error: --io-deadline: expected 0.1..86400 seconds, got nan"


def _start_mas_serve(*args: str, **secrets: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", **secrets)
    proc = subprocess.Popen([sys.executable, "-m", "mas.cli", "serve", "--port", "0", "--name", NAME, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + 120
    line = proc.stdout.readline() if proc.stdout else ""
    if "http://" not in line or time.monotonic() > deadline:
        proc.kill()
        pytest.fail(f"mas serve did not start: {line!r}")
    assert not any(value in line for value in secrets.values())  # an API key is never printed
    url = line.split(" on ", 1)[1].split("/v1", 1)[0]
    return proc, url


def test_mas_serve_api_key_env_must_name_a_set_variable(capsys, monkeypatch) -> None:
    from mas.cli import main

    monkeypatch.delenv("MAS_UNSET_KEY", raising=False)
    assert main(["serve", "--port", "0", "--api-key-env", "MAS_UNSET_KEY"]) == 1
    assert capsys.readouterr().err.strip() == "mas: error: --api-key-env: the environment variable 'MAS_UNSET_KEY' is not set (or empty)"


def test_server_dying_mid_run_gives_a_clear_error_and_keeps_finished_episodes(tmp_path: Path, monkeypatch) -> None:
    from mas.runner import run
    from mas.scenario import parse_scenario
    from mas.store import RunStore

    # the server wants a key (--api-key-env); the run's backend sends it (backend.api_key_env)
    monkeypatch.setenv("MAS_TEST_KEY", "sk-cli-7")
    proc, url = _start_mas_serve("--api-key-env", "MAS_SERVE_KEY", MAS_SERVE_KEY="sk-cli-7")
    try:
        with httpx.Client() as http_client:
            assert http_client.get(f"{url}/v1/models").status_code == 401
        policy = {"type": "llm", "backend": {"kind": "openai", "base_url": f"{url}/v1", "model": NAME, "max_retries": 1,
                                             "api_key_env": "MAS_TEST_KEY"},
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
