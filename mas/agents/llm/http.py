"""The HTTP backend: any OpenAI-compatible server (vLLM, Ollama, llama.cpp, `mas serve`, hosted APIs).

`generate` uses /v1/chat/completions. `score` needs the log-probability of prompt tokens,
which only some servers give: it asks the server to apply its own chat template
(vLLM's /tokenize, also offered by `mas serve`), appends each candidate's tokens, and
reads the candidates' log-probabilities from /v1/completions with `echo` and `logprobs`.
So a remote score is the same quantity as a local one. Servers without these endpoints
(hosted chat APIs, Ollama) can still play in `generate` mode.

Replies are checked, not trusted: what is not the JSON asked for is a one-line
`LLMServerError`; scores that are not log-probabilities (NaN, infinite, positive) are passed
on as they came, and the policy records a fallback instead of a decision (`Scores.problem`).

Failures: each request has a time-out; time-outs, connection errors, 429 and 5xx are
retried with exponential back-off (honouring Retry-After); at most `concurrency` requests
are in flight. What cannot be retried becomes a one-line `LLMServerError` that names the
server and the cause. The API key is read from the environment variable the config names,
sent only in the Authorization header, and never stored in records, logs or `info`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from mas.agents.llm.backend import (
    LOGPROB_SLACK,
    BackendInfo,
    GenerateRequest,
    Generation,
    LLMBackend,
    Scores,
    ScoreRequest,
)
from mas.agents.llm.config import OpenAIBackendConfig
from mas.errors import MasError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_REPLY = 64 * 1024 * 1024  # bytes; a score reply echoing a few thousand prompt tokens is ~1 MiB


class LLMServerError(MasError):
    """An OpenAI-compatible server could not be reached or refused a request."""


class OpenAIBackend(LLMBackend):
    """Generate and score over HTTP (see the module docstring).

    Args:
        config: base URL, model, API-key variable, time-out, retries, concurrency.
        backoff: seconds before the first retry; doubled for each further one.
    """

    def __init__(self, config: OpenAIBackendConfig, backoff: float = 0.5) -> None:
        self.config = config
        self.backoff = backoff
        self.base_url = config.base_url.rstrip("/")
        headers = {}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise LLMServerError(
                    f"backend.api_key_env names '{config.api_key_env}', but that environment variable is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        )
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="mas-http")
        self._candidate_tokens: dict[str, list[int]] = {}
        self._tokens_lock = threading.Lock()
        self.retries = 0  # how many retries were needed (for tests and reports)

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(kind="openai", model=self.config.model, details={"base_url": self.base_url})

    # ----- generate -------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[Generation]:
        return self._map(self._generate_one, requests)

    def _generate_one(self, request: GenerateRequest) -> Generation:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.json:
            body["response_format"] = {"type": "json_object"}
        reply = self._post("/chat/completions", body)
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
            if not isinstance(text, str):
                raise TypeError
            usage = reply.get("usage") or {}
            return Generation(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            )
        except (KeyError, IndexError, TypeError, ValueError, OverflowError, AttributeError):
            raise LLMServerError(f"LLM server at {self.base_url} sent a chat completion without choices[0].message.content") from None

    # ----- score ----------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[Scores]:
        return self._map(self._score_one, requests)

    def _score_one(self, request: ScoreRequest) -> Scores:
        prompt = self._tokenize({"messages": [dict(m) for m in request.messages], "add_generation_prompt": True})
        candidates = [self._candidate(c) for c in request.candidates]
        body = {
            "model": self.config.model,
            "prompt": [prompt + cand for cand in candidates],
            "max_tokens": 0,
            "echo": True,
            "logprobs": 0,
            "temperature": 0.0,
        }
        reply = self._post("/completions", body)
        try:
            choices = sorted(reply["choices"], key=lambda c: c.get("index", 0))
            totals = []
            for cand, choice in zip(candidates, choices):
                values = choice["logprobs"]["token_logprobs"][len(prompt) : len(prompt) + len(cand)]
                if len(values) != len(cand) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                    raise ValueError
                # NaN and infinities carry through the sum; a token scored above 0 could hide
                # in it, so it stands for the candidate: the policy then rejects the scores
                # (`Scores.problem`) and records a fallback instead of a decision
                totals.append(float(max(values)) if max(values, default=0.0) > LOGPROB_SLACK else float(sum(values)))
            if len(totals) != len(candidates):
                raise ValueError
        except (KeyError, IndexError, TypeError, ValueError, OverflowError, AttributeError):
            raise LLMServerError(
                f"LLM server at {self.base_url} did not return prompt log-probabilities from /completions with "
                "echo; score mode needs a server that does (mas serve, vLLM), or use mode: generate"
            ) from None
        return Scores(logprobs=tuple(totals), candidate_tokens=tuple(len(c) for c in candidates), prompt_tokens=len(prompt))

    def _candidate(self, text: str) -> list[int]:
        with self._tokens_lock:
            known = self._candidate_tokens.get(text)
        if known is None:
            known = self._tokenize({"prompt": text, "add_special_tokens": False})
            with self._tokens_lock:
                self._candidate_tokens[text] = known
        return known

    def _tokenize(self, body: dict[str, Any]) -> list[int]:
        root = self.base_url.removesuffix("/v1")
        try:
            reply = self._post("/tokenize", {"model": self.config.model, **body}, base=root)
        except LLMServerError as exc:
            if getattr(exc, "status", None) == 404 and "model" not in str(exc):
                raise LLMServerError(
                    f"LLM server at {self.base_url} has no /tokenize endpoint; score mode needs one "
                    "(mas serve, vLLM), or use mode: generate"
                ) from None
            raise
        tokens = reply.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise LLMServerError(f"LLM server at {self.base_url}: /tokenize did not return a token list")
        return tokens

    # ----- transport ------------------------------------------------------------------
    def _map(self, call: Callable[[Any], Any], requests: Sequence[Any]) -> list[Any]:
        if len(requests) <= 1:
            return [call(r) for r in requests]
        return list(self._pool.map(call, requests))

    def _post(self, path: str, body: dict[str, Any], base: str | None = None) -> dict[str, Any]:
        url = (base or self.base_url) + path
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self._exchange(url, body)
            except httpx.TimeoutException:
                cause = f"no answer within {self.config.timeout:g} s"
            except httpx.TransportError as exc:
                cause = f"cannot connect ({exc.__class__.__name__})"
            else:
                if response.status_code < 400:
                    return self._json(response, url)
                if response.status_code not in RETRY_STATUS:
                    raise self._refusal(response, path)
                cause = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            if attempt >= self.config.max_retries:
                raise LLMServerError(
                    f"LLM server at {self.base_url} failed after {attempt + 1} tries ({cause}); is it running and reachable?"
                )
            delay = self.backoff * 2**attempt
            if retry_after is not None:
                delay = max(delay, retry_after)
            attempt += 1
            self.retries += 1
            time.sleep(min(delay, 30.0))

    def _exchange(self, url: str, body: dict[str, Any]) -> httpx.Response:
        """POST and read the whole reply within `timeout` seconds and MAX_REPLY bytes: httpx's
        time-out bounds each read, so a server dripping bytes, or sending without end, would
        otherwise hold the run (and its memory) forever."""
        deadline = time.monotonic() + self.config.timeout
        with self._client.stream("POST", url, json=body) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_REPLY:
                    raise LLMServerError(f"LLM server at {self.base_url} answered {url} with more than {MAX_REPLY >> 20} MiB")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("reply not finished in time", request=response.request)
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]  # decoded already
        return httpx.Response(response.status_code, headers=headers, content=bytes(data), request=response.request)

    def _json(self, response: httpx.Response, url: str) -> dict[str, Any]:
        try:
            data = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            raise LLMServerError(f"LLM server at {self.base_url} answered {url} with something that is not JSON") from None
        if not isinstance(data, dict):
            raise LLMServerError(f"LLM server at {self.base_url} answered {url} with JSON that is not an object")
        return data

    def _refusal(self, response: httpx.Response, path: str) -> LLMServerError:
        message = _error_message(response)
        status = response.status_code
        if status in (401, 403):
            hint = f"check the key in ${self.config.api_key_env}" if self.config.api_key_env else "set backend.api_key_env"
            error = LLMServerError(f"LLM server at {self.base_url} refused the request (HTTP {status}: {message}); {hint}")
        elif status == 404 and ("model" in message.lower() or path in ("/chat/completions", "/completions")):
            error = LLMServerError(
                f"LLM server at {self.base_url} does not know model '{self.config.model}' (HTTP 404: {message}); "
                f"it serves: {self._served_models() or 'unknown'}"
            )
        else:
            error = LLMServerError(f"LLM server at {self.base_url} refused {path} (HTTP {status}: {message})")
        error.status = status  # type: ignore[attr-defined]
        return error

    def _served_models(self) -> str:
        try:
            data = self._client.get(self.base_url + "/models").json()
            return ", ".join(str(m.get("id")) for m in data.get("data", []))
        except (httpx.HTTPError, ValueError, AttributeError):
            return ""

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._client.close()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        message = message or data.get("detail") or data.get("message")
    except (ValueError, AttributeError):
        message = None
    text = str(message or response.text or response.reason_phrase).strip()
    return text.splitlines()[0][:200] if text else ""
