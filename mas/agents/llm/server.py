"""`mas serve`: an OpenAI-compatible HTTP server over a local transformers model.

Many worker processes (a tournament) then share one loaded model, and the HTTP backend
has a real server to be tested against. Built on the standard library's threading HTTP
server: the model is the bottleneck, requests are served one model call at a time.

Endpoints (the subset of the OpenAI and vLLM APIs that mas uses):
- GET  /v1/models
- POST /v1/chat/completions   messages -> reply (max_tokens, temperature, seed, stop)
- POST /v1/completions        raw text or token-id prompts; `echo` + `logprobs` return the
                              log-probability of every prompt token (how candidates are scored)
- POST /tokenize              vLLM's: {"messages", "add_generation_prompt"} or {"prompt"} -> tokens

Errors use OpenAI's shape: {"error": {"message", "type", "code"}} with a 4xx/5xx status.
Whatever a client sends gets an answer of this shape: malformed bodies, headers and
parameters are a 400, never a 500 (which means a bug in this module).

Hardening: with `api_key` set (`mas serve --api-key-env VAR`), every request but /health
needs `Authorization: Bearer <key>` (else 401); the key is compared in constant time and
never printed or logged. A connection that sends nothing for `read_timeout` seconds is
closed (a stalled upload holds its thread no longer), and reading a request or writing
its answer has a total deadline (`io_deadline`), so a client that drips one byte just
inside each time-out still lets go of its thread. At most `max_connections` connections
are served at once (one thread each); further ones wait in the listen backlog, which holds
`BACKLOG`, so bursts of clients queue instead of being reset. Bodies are at most 16 MiB.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import socket
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np

from mas.agents.llm.backend import GenerateRequest
from mas.agents.llm.local import TransformersBackend
from mas.agents.llm.server_limits import BoundedListener, cut_after

MAX_BODY = 16 * 1024 * 1024
SEED_RANGE = (-(2**63), 2**63)
MAX_PROMPTS = 1024  # per /v1/completions request (a score request sends one per candidate)
MAX_TOKENS = 4096  # generated tokens per request (a small model's replies are tens)  # int64, as OpenAI's API documents it (torch takes no more)


class RequestError(Exception):
    """A client error, answered with an OpenAI-style error body."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ModelServer:
    """Serves one `TransformersBackend` under the name `model_name`.

    Args:
        backend: the loaded model.
        model_name: the name clients must send as "model" (also listed by /v1/models).
        host, port: where to listen (port 0 picks a free port; see `address`).
        delay_s, delay_first: answer the first `delay_first` requests `delay_s` seconds late;
        fail_first: answer the first `fail_first` requests "503 busy" (both for testing
            clients' time-outs and retries).
        api_key: when set, requests must carry `Authorization: Bearer <api_key>`.
        read_timeout: seconds a connection may stay silent (mid-request or idle) before it is closed.
        io_deadline: seconds in all to read one request, and again to write its answer
            (the model's work in between is not counted); past it the connection is cut.
        max_connections: connections served at once, one thread each.
    """

    def __init__(self, backend: TransformersBackend, model_name: str, host: str = "127.0.0.1", port: int = 8000,
                 delay_s: float = 0.0, delay_first: int = 0, fail_first: int = 0,
                 api_key: str | None = None, read_timeout: float = 30.0, io_deadline: float = 120.0,
                 max_connections: int = 128) -> None:
        self.backend = backend
        self.model_name = model_name
        self._api_key = api_key.encode() if api_key else None
        self.delay_s = delay_s
        self._delays_left = delay_first
        self._failures_left = fail_first
        self._count_lock = threading.Lock()
        self.requests_served = 0
        handler = type("Handler", (_Handler,), {"app": self, "timeout": read_timeout, "io_deadline": io_deadline})
        self.httpd = BoundedListener((host, port), handler, max_connections)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> "ModelServer":
        """Serve from a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ----- request handling -------------------------------------------------------------
    def injected_fault(self) -> bool:
        """Apply a test fault to this request: sleep first, or say busy (True)."""
        with self._count_lock:
            self.requests_served += 1
            delay = self._delays_left > 0
            self._delays_left -= delay
            fail = not delay and self._failures_left > 0
            self._failures_left -= fail
        if delay:
            time.sleep(self.delay_s)
        return fail

    def authorized(self, header: str | None) -> bool:
        """Whether a request's Authorization header carries the key (always, without one)."""
        if self._api_key is None:
            return True
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._api_key)

    def check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model != self.model_name:
            raise RequestError(f"The model `{model}` does not exist; this server serves `{self.model_name}`",
                               status=404, code="model_not_found")

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "mas"}]}

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        self.check_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and isinstance(m.get("role"), str) for m in messages
        ):
            raise RequestError("'messages' must be a non-empty list of {role, content} objects")
        if body.get("n", 1) != 1:
            raise RequestError("only n=1 is supported")
        request = GenerateRequest(
            messages=tuple({"role": m["role"], "content": m["content"]} for m in messages),
            **_sampling(body),
            json=isinstance(body.get("response_format"), dict) and body["response_format"].get("type") == "json_object",
        )
        self._check_context([self.backend.prompt_ids(request.messages)], request.max_tokens)
        generation = self.backend.generate([request])[0]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": generation.text},
                         "finish_reason": generation.finish_reason}],
            "usage": _usage(generation.prompt_tokens, generation.completion_tokens),
        }

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        self.check_model(body)
        prompts = self._prompt_tokens(body.get("prompt"))
        params = _sampling(body)
        self._check_context(prompts, params["max_tokens"])
        echo = bool(body.get("echo", False))
        want_logprobs = body.get("logprobs") is not None
        generations = (
            self.backend.generate_tokens(prompts, [GenerateRequest(messages=(), **params)] * len(prompts))
            if params["max_tokens"] > 0 else [None] * len(prompts)
        )
        choices, prompt_total, completion_total = [], 0, 0
        for index, (prompt, generation) in enumerate(zip(prompts, generations)):
            completion = self.backend.text_ids(generation.text) if generation and generation.text else []
            prompt_total += len(prompt)
            completion_total += generation.completion_tokens if generation else 0
            text = (self._decode(prompt) if echo else "") + (generation.text if generation else "")
            logprobs = None
            if want_logprobs:
                shown = (list(prompt) if echo else []) + completion
                values = self.backend.token_logprobs([list(prompt) + completion])[0]
                values = values if echo else values[len(prompt):]
                logprobs = self._logprobs_block(shown, values)
            choices.append({"index": index, "text": text, "logprobs": logprobs,
                            "finish_reason": generation.finish_reason if generation else "length"})
        return {"id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "text_completion", "created": int(time.time()),
                "model": self.model_name, "choices": choices, "usage": _usage(prompt_total, completion_total)}

    def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        if "model" in body:
            self.check_model(body)
        if "messages" in body:
            if not body.get("add_generation_prompt", True):
                raise RequestError("only add_generation_prompt=true is supported")
            messages = body["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise RequestError("'messages' must be a list of {role, content} objects")
            tokens = self.backend.prompt_ids([{"role": m.get("role", ""), "content": m.get("content", "")} for m in messages])
        elif isinstance(body.get("prompt"), str):
            if body.get("add_special_tokens", True):
                tokens = [int(t) for t in self.backend.tokenizer(body["prompt"])["input_ids"]]
            else:
                tokens = list(self.backend.text_ids(body["prompt"]))
        else:
            raise RequestError("send 'messages' or a string 'prompt'")
        return {"tokens": tokens, "count": len(tokens), "max_model_len": _max_len(self.backend)}

    # ----- helpers ----------------------------------------------------------------------
    def _check_context(self, prompts: list[list[int]], max_tokens: int) -> None:
        """Refuse what the model cannot hold (its memory and time grow with the length)."""
        limit = _max_len(self.backend)
        longest = max((len(p) for p in prompts), default=0)
        if limit and longest + max_tokens > limit:
            raise RequestError(f"a prompt of {longest} tokens plus max_tokens {max_tokens} exceeds the model's context "
                               f"of {limit} tokens")
        if len(prompts) > MAX_PROMPTS:
            raise RequestError(f"at most {MAX_PROMPTS} prompts per request, got {len(prompts)}")

    def _prompt_tokens(self, prompt: Any) -> list[list[int]]:
        """OpenAI allows a string, a list of strings, a token list or a list of token lists."""
        if isinstance(prompt, str):
            prompt = [prompt]
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            prompt = [prompt]
        if not isinstance(prompt, list) or not prompt:
            raise RequestError("'prompt' must be a string, a list of strings, or token-id lists")
        tokens = []
        for item in prompt:
            if isinstance(item, str):
                tokens.append([int(t) for t in self.backend.tokenizer(item)["input_ids"]])
            elif isinstance(item, list) and item and all(isinstance(t, int) and t >= 0 for t in item):
                tokens.append(item)
            else:
                raise RequestError("'prompt' must be a string, a list of strings, or non-empty token-id lists")
        vocab = len(self.backend.tokenizer)
        if any(t >= vocab for item in tokens for t in item):
            raise RequestError(f"'prompt' holds a token id outside the vocabulary (size {vocab})")
        return tokens

    def _decode(self, tokens: list[int]) -> str:
        return self.backend.tokenizer.decode(tokens)

    def _logprobs_block(self, tokens: list[int], values: np.ndarray) -> dict[str, Any]:
        pieces = [self.backend.tokenizer.decode([t]) for t in tokens]
        offsets = np.cumsum([0] + [len(p) for p in pieces[:-1]]).tolist() if pieces else []
        return {
            "tokens": pieces,
            "token_logprobs": [None if np.isnan(v) else float(v) for v in values],
            "top_logprobs": None,
            "text_offset": [int(o) for o in offsets],
        }


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
    temperature = body.get("temperature", 1.0)
    seed = body.get("seed")
    stop = body.get("stop") or ()
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 0 <= max_tokens <= MAX_TOKENS:
        raise RequestError(f"'max_tokens' must be a whole number 0 .. {MAX_TOKENS}")
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature < math.inf:
        raise RequestError("'temperature' must be a finite number >= 0")  # NaN fails the comparison too
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not SEED_RANGE[0] <= seed < SEED_RANGE[1]):
        raise RequestError("'seed' must be an integer that fits in 64 bits")
    if not isinstance(stop, (str, list, tuple)):
        raise RequestError("'stop' must be a string or a list of strings")
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    if not all(isinstance(s, str) for s in stop):
        raise RequestError("'stop' must be a string or a list of strings")
    return {"max_tokens": max_tokens, "temperature": float(temperature), "seed": seed, "stop": stop}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _max_len(backend: TransformersBackend) -> int:
    return int(getattr(backend.model.config, "max_position_embeddings", 0) or 0)


class _Handler(BaseHTTPRequestHandler):
    app: ModelServer
    io_deadline: float
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per error only
        pass

    def handle_one_request(self) -> None:
        # the deadline runs from the first byte awaited to the end of the body (`_body`
        # stops it); an idle keep-alive connection is closed sooner, by the read time-out
        with self._deadline():
            super().handle_one_request()

    @contextlib.contextmanager
    def _deadline(self) -> Any:
        """Cut the connection if the block still runs after `io_deadline` seconds."""
        with cut_after(self, self.io_deadline) as timer:
            previous, self._timer = getattr(self, "_timer", None), timer
            try:
                yield
            finally:
                self._timer = previous

    def _refuse_unauthorized(self) -> bool:
        """Answer 401 (True) unless the request carries the server's key or asks for /health."""
        if self.path.rstrip("/") in ("/health", "/v1/health") or self.app.authorized(self.headers.get("Authorization")):
            return False
        with contextlib.suppress(RequestError, OSError):
            self._body(required=False)  # read it, so the answer is not lost to a reset
        self._error(RequestError("missing or wrong API key: send the header 'Authorization: Bearer <key>'",
                                 status=401, code="invalid_api_key"))
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self._refuse_unauthorized():
            return
        if self.app.injected_fault():
            self._error(RequestError("busy (injected fault)", status=503, code="busy"))
        elif self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(HTTPStatus.OK, self.app.models())
        elif self.path.rstrip("/") in ("/health", "/v1/health"):
            self._send(HTTPStatus.OK, {"status": "ok"})
        else:
            self._error(RequestError(f"no such endpoint: GET {self.path}", status=404, code="not_found"))

    def do_POST(self) -> None:  # noqa: N802
        if self._refuse_unauthorized():
            return
        if self.app.injected_fault():
            with contextlib.suppress(RequestError, OSError):
                self._body()  # read it, so the connection stays usable
            self._error(RequestError("busy (injected fault)", status=503, code="busy"))
            return
        routes = {
            "/v1/chat/completions": self.app.chat_completions,
            "/v1/completions": self.app.completions,
            "/tokenize": self.app.tokenize,
            "/v1/tokenize": self.app.tokenize,
        }
        route = routes.get(self.path.rstrip("/"))
        try:
            if route is None:
                raise RequestError(f"no such endpoint: POST {self.path}", status=404, code="not_found")
            payload = route(self._body())
        except RequestError as exc:
            self._error(exc)
        except OSError:  # the client went silent mid-body (read_timeout) or away: nobody to answer
            self.close_connection = True
        except Exception as exc:  # a server bug: answer 500 so clients fail clearly, keep serving
            self._error(RequestError(f"internal error: {exc.__class__.__name__}: {exc}", status=500, code="internal_error"))
        else:
            self._send(HTTPStatus.OK, payload)

    def _body(self, required: bool = True) -> dict[str, Any]:
        """The request's JSON object. A body that cannot be read to its end (no, a bad or an
        oversize Content-Length, chunked) leaves the connection unusable, so it is closed."""
        header = self.headers.get("Content-Length")
        digits = (header or "").strip()
        length = int(digits) if digits.isascii() and digits.isdigit() else -1
        if header is None and not required:
            return {}
        if not 0 < length <= MAX_BODY:
            self.close_connection = True
            if header is not None and length == -1:
                raise RequestError(f"Content-Length must be a whole number of bytes, got {header[:40]!r}")
            raise RequestError(f"expected a JSON body (Content-Length 1 .. {MAX_BODY >> 20} MiB)")
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            raise RequestError(f"the body ended after {len(data)} of {length} bytes")
        if self._timer is not None:
            self._timer.cancel()  # the request is read: the model's time is not the client's
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise RequestError("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise RequestError("the body must be a JSON object")
        return body

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            with self._deadline():
                self.end_headers()
                self.wfile.write(data)
            if self.close_connection:
                self._linger()
        except OSError:  # the client gave up (its time-out) or went silent: nothing to tell
            self.close_connection = True

    def _linger(self) -> None:
        """Before closing a connection whose request was not read to its end: say we are done
        writing and discard what the client still sends for a moment, because closing a socket
        with unread data resets it, and the client would lose the answer just written."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_WR)
        self.connection.settimeout(1.0)
        deadline, left = time.monotonic() + 2.0, MAX_BODY
        while left > 0 and time.monotonic() < deadline:
            chunk = self.connection.recv(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)

    def _error(self, exc: RequestError) -> None:
        self._send(exc.status, {"error": {"message": str(exc), "type": "invalid_request_error" if exc.status < 500 else "server_error", "code": exc.code}})
