"""What one chat request may ask for, and how often a key may ask.

Two kinds of limits live here:

* **What a request may ask for**: sizes (messages, characters, ``max_tokens``) and the
  OpenAI fields the backend can honour, checked before anything runs: 400 or 413.
* **Per-key rate limits**, requests and tokens per minute (``ATTUNE_SERVER__RATE_LIMIT_RPM``
  and ``…_TPM``, 0 meaning unlimited). Each is a token bucket that holds a minute's worth
  and refills continuously, so a key may burst a minute's budget and then runs at the
  rate. A request counts 1 request and, as OpenAI counts, its prompt estimate (characters
  / 4) plus its ``max_tokens``, up front; what the reply really used is not refunded. The
  buckets live in this process (:class:`MemoryLimiter`, the embedded default) or in Redis
  (:class:`RedisLimiter`, one atomic Lua script), so several server processes share one
  budget. Past either bucket: 429 with ``Retry-After`` and OpenAI's ``x-ratelimit-*``
  headers, which successful responses carry too.

Keys are told apart by a hash of the bearer key, never the key itself. Only chat is
limited: the admin key cannot chat, so it is never limited.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.responses import JSONResponse
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from api.errors import APIError, ErrorBody, error_body
from api.protocol import ChatCompletionRequest, ChatMessageIn
from api.services import AppServices
from graph.runner import ChatMessage, TurnRequest
from wiring.settings import ServerSettings

log = logging.getLogger(__name__)
CHARS_PER_TOKEN = 4
"""The prompt estimate's rule of thumb (OpenAI's): no tokenizer runs before admission."""


class Refused(Exception):
    """A request turned away before its turn started: 429 or 503, always with Retry-After."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str,
        reason: str,
        retry_after_s: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the refusal; ``reason`` is the metric label and the error's ``code``."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.reason = reason
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        self.headers = headers or {}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """The OpenAI-shaped error response, with ``Retry-After`` and ``headers``."""
        return JSONResponse(
            error_body(self.message, self.type, code=self.reason),
            status_code=self.status,
            headers={**(headers or {}), **self.headers, "Retry-After": str(self.retry_after_s)},
        )


REFUSALS: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "A rate limit or the per-user turn cap; retry "
          "after the Retry-After header (x-ratelimit-* headers say which limit)."},
    503: {"model": ErrorBody, "description": "The server is at capacity or no model server "
          "answers; retry after the Retry-After header."},
}  # fmt: skip
"""Declared on the chat route: the refusals of this module and ``api.admission``."""


# -- what a request may ask for ------------------------------------------------------


def to_chat_messages(
    messages: Sequence[ChatMessageIn], limits: ServerSettings
) -> list[ChatMessage]:
    """Check count and size limits and convert; ``developer`` becomes ``system``."""
    if len(messages) > limits.max_messages:
        raise APIError(
            400,
            f"too many messages ({len(messages)} > {limits.max_messages}); send only the "
            "new message with a thread_id",
            param="messages",
        )
    out = []
    for i, m in enumerate(messages):
        text = m.text()
        if len(text) > limits.max_message_chars:
            raise APIError(
                413,
                f"messages[{i}] is {len(text)} characters; the limit is {limits.max_message_chars}",
                param=f"messages.{i}.content",
            )
        role = "system" if m.role == "developer" else m.role
        out.append(ChatMessage(role=role, content=text))
    last = len(out) - 1
    if out[last].role == "user" and not out[last].content.strip():
        raise APIError(
            400, f"messages[{last}], the new user message, is empty", param=f"messages.{last}"
        )
    return out


def reply_budget(requested: int | None, param: str, services: AppServices) -> int:
    """``max_tokens`` as asked (or the default), if it leaves room for a prompt."""
    window = services.settings.graph.context_window
    if requested is None:
        return services.settings.model.default_max_tokens
    if requested >= window:
        raise APIError(
            400,
            f"{param}={requested} leaves no room for the prompt in the model's {window}-token "
            "context; ask for fewer tokens",
            param=param,
        )
    return requested


def check_honoured(body: ChatCompletionRequest, services: AppServices) -> None:
    """Refuse, naming it, an OpenAI field that would change the reply and can't be honoured.

    A dropped field would silently answer another question than the one asked.
    """
    backend = services.backend
    refused = [
        ("tools", bool(body.tools or body.functions), "client-defined tools"),
        ("tool_choice", body.tool_choice not in (None, "none") or body.function_call
         not in (None, "none"), "client-defined tools"),
        ("logprobs", bool(body.logprobs or body.top_logprobs), "log probabilities"),
        ("logit_bias", bool(body.logit_bias), "logit bias"),
        ("frequency_penalty", bool(body.frequency_penalty), "frequency penalties"),
        ("presence_penalty", bool(body.presence_penalty), "presence penalties"),
    ]  # fmt: skip
    for param, asked, what in refused:
        if asked:
            raise APIError(
                400,
                f"{param}: {what} are not supported by Attune (backend {backend.name}); "
                f"remove {param} from the request",
                param=param,
            )
    kind = body.response_format.type if body.response_format else "text"
    if kind not in backend.output_formats:
        raise APIError(
            400,
            f"response_format {kind!r} needs guided decoding, which the {backend.name} "
            "backend does not have; serve through vLLM (ATTUNE_MODEL__BACKEND=vllm) or ask "
            "for text",
            param="response_format",
        )


def request_tokens(request: TurnRequest) -> int:
    """What a request counts against the tokens-per-minute bucket: prompt + ``max_tokens``."""
    chars = sum(len(m.content) for m in request.messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + request.params["max_tokens"]


# -- rate limits ------------------------------------------------------------------------


def key_id(authorization: str) -> str:
    """A stable, non-reversible name for the bearer key in ``authorization``."""
    secret = authorization.split(None, 1)[-1].strip()
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``250ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 10) / 10:g}s"
    return f"{int(seconds // 60)}m{math.ceil(seconds % 60)}s"


def refill(level: float, elapsed: float, per_minute: int) -> float:
    """A bucket of ``per_minute`` capacity after ``elapsed`` seconds of refilling."""
    return min(float(per_minute), level + max(0.0, elapsed) * per_minute / 60.0)


@dataclass(frozen=True)
class Quota:
    """One key's buckets after a request was charged (or refused) against them."""

    rpm: int
    tpm: int
    cost: int
    """The request's tokens."""
    requests_left: float
    tokens_left: float
    allowed: bool

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the limits that are on."""
        out: dict[str, str] = {}
        for kind, limit, left in (
            ("requests", self.rpm, self.requests_left),
            ("tokens", self.tpm, self.tokens_left),
        ):
            if limit > 0:
                out[f"x-ratelimit-limit-{kind}"] = str(limit)
                out[f"x-ratelimit-remaining-{kind}"] = str(max(0, math.floor(left)))
                out[f"x-ratelimit-reset-{kind}"] = _duration((limit - left) * 60 / limit)
        return out

    def refusal(self) -> Refused:
        """The 429 for a refused charge: which bucket ran dry, and when to retry."""
        if self.tpm > 0 and self.cost > self.tpm:
            return Refused(
                429,
                f"this request counts {self.cost} tokens (its prompt estimate plus max_tokens) "
                f"but the key's limit is {self.tpm} tokens per minute; ask for fewer "
                "max_tokens or send a shorter conversation",
                type="tokens",
                reason="rate_limited",
                retry_after_s=60,
                headers=self.headers(),
            )
        waits = []
        if self.rpm > 0 and self.requests_left < 1:
            waits.append(("requests", self.rpm, (1 - self.requests_left) * 60 / self.rpm))
        if self.tpm > 0 and self.tokens_left < self.cost:
            waits.append(("tokens", self.tpm, (self.cost - self.tokens_left) * 60 / self.tpm))
        kind, limit, wait = max(waits, key=lambda w: w[2])
        return Refused(
            429,
            f"rate limit reached for this API key on {kind} per minute (limit {limit}); "
            f"try again in {_duration(wait)}",
            type=kind,
            reason="rate_limited",
            retry_after_s=wait,
            headers=self.headers(),
        )


class RateLimiter(Protocol):
    """Charges requests against a key's buckets."""

    rpm: int
    tpm: int

    async def charge(self, key: str, tokens: int) -> Quota:
        """Take 1 request and ``tokens`` from ``key``'s buckets if both hold enough.

        A refused charge takes nothing (its :class:`Quota` has ``allowed`` false).
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryLimiter:
    """Token buckets in this process (one server process: the embedded default)."""

    def __init__(self, rpm: int, tpm: int, *, clock: Callable[[], float] = time.monotonic):
        """Limit each key to ``rpm`` requests and ``tpm`` tokens a minute (0: unlimited)."""
        self.rpm, self.tpm, self.clock = rpm, tpm, clock
        self._buckets: dict[str, tuple[float, float, float]] = {}

    async def charge(self, key: str, tokens: int) -> Quota:
        """See :meth:`RateLimiter.charge`."""
        now = self.clock()
        if len(self._buckets) > 10_000:  # idle a minute means full: forget those
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[2] < 60}
        requests, toks, at = self._buckets.get(key, (self.rpm, self.tpm, now))
        requests = refill(requests, now - at, self.rpm)
        toks = refill(toks, now - at, self.tpm)
        allowed = (self.rpm == 0 or requests >= 1) and (self.tpm == 0 or toks >= tokens)
        if allowed:
            requests -= 1 if self.rpm else 0
            toks -= tokens if self.tpm else 0
        self._buckets[key] = (requests, toks, now)
        return Quota(self.rpm, self.tpm, tokens, requests, toks, allowed)

    async def aclose(self) -> None:
        """Nothing to release."""


# The same buckets as MemoryLimiter, refilled and charged in one atomic step on the server.
# KEYS[1]: the key's hash. ARGV: now in seconds ("" = Redis' clock), rpm, tpm, cost.
_CHARGE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rpm, tpm, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local elapsed = math.max(0, now - (tonumber(s[3]) or now))
local r = math.min(rpm, (tonumber(s[1]) or rpm) + elapsed * rpm / 60)
local t = math.min(tpm, (tonumber(s[2]) or tpm) + elapsed * tpm / 60)
local ok = (rpm == 0 or r >= 1) and (tpm == 0 or t >= cost)
if ok then
  if rpm > 0 then r = r - 1 end
  if tpm > 0 then t = t - cost end
end
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(t), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 61)
return {ok and 1 or 0, tostring(r), tostring(t)}
"""


class RedisLimiter:
    """Token buckets in Redis, shared by every server process that uses the same Redis.

    A Lua script refills and charges both buckets atomically, so concurrent requests on
    several processes cannot overdraw them. A bucket idle for a minute is full, so its key
    expires then. Time is Redis' own clock unless ``clock`` is given (tests), so
    processes whose clocks differ still agree. When Redis does not answer, requests pass
    (logged): the limiter must not take chat down with it.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        rpm: int,
        tpm: int,
        *,
        prefix: str = "attune:ratelimit:",
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Limit each key to ``rpm`` requests and ``tpm`` tokens a minute (0: unlimited)."""
        self.client, self.rpm, self.tpm = client, rpm, tpm
        self.prefix, self.clock = prefix, clock
        self._script = client.register_script(_CHARGE)

    @classmethod
    def from_url(cls, url: str, rpm: int, tpm: int, **kwargs: Any) -> RedisLimiter:
        """Connect (lazily) to the Redis at ``url``."""
        return cls(aioredis.Redis.from_url(url, socket_timeout=2.0), rpm, tpm, **kwargs)

    async def charge(self, key: str, tokens: int) -> Quota:
        """See :meth:`RateLimiter.charge`."""
        now = "" if self.clock is None else repr(self.clock())
        try:
            ok, requests, toks = await self._script(
                keys=[self.prefix + key], args=[now, self.rpm, self.tpm, tokens]
            )
        except RedisError as exc:
            log.warning("rate limit store unavailable, request let through: %s", type(exc))
            return Quota(self.rpm, self.tpm, tokens, self.rpm, self.tpm, True)
        return Quota(self.rpm, self.tpm, tokens, float(requests), float(toks), bool(ok))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def make_limiter(server: ServerSettings, broker_url: str | None) -> RateLimiter | None:
    """The limiter the settings ask for: none when both limits are 0.

    Redis is ``server.rate_limit_redis_url``, else the workers' broker when that is Redis
    (the scaled-out topology has one already), else the buckets stay in this process.
    """
    if server.rate_limit_rpm == 0 and server.rate_limit_tpm == 0:
        return None
    url = server.rate_limit_redis_url
    if url is None and broker_url is not None and broker_url.startswith(("redis:", "rediss:")):
        url = broker_url
    if url is None:
        return MemoryLimiter(server.rate_limit_rpm, server.rate_limit_tpm)
    return RedisLimiter.from_url(url, server.rate_limit_rpm, server.rate_limit_tpm)
