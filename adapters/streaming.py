"""Pure helpers for streaming text out of a token-by-token decoder.

Nothing here knows about torch or a model: the decoder feeds token ids in, and gets back
text that is safe to show the client.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length"]
"""``stop``: the model ended (EOS) or a stop string was reached; ``length``: the token
budget ran out."""


@dataclass(frozen=True)
class Usage:
    """Token counts of one generation.

    Attributes:
        prompt_tokens: Tokens in the templated prompt the model read.
        completion_tokens: Tokens the model sampled, counting the one that ended it
            (EOS or the token completing a stop string).
    """

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class GenerationChunk:
    """A piece of streamed output.

    Every chunk but the last carries non-empty ``text``; the last one carries ``usage``
    and ``finish_reason`` (and possibly text held back until the end).
    """

    text: str
    usage: Usage | None = None
    finish_reason: FinishReason | None = None


@dataclass(frozen=True)
class GenerationResult:
    """A whole generation, as :meth:`LocalEngine.generate` returns it."""

    text: str
    usage: Usage
    finish_reason: FinishReason


def normalize_stops(stops: Iterable[str] | None) -> list[str]:
    """Drop empty and duplicate stop strings, keeping their first-seen order.

    Args:
        stops: Stop strings from the model's defaults and the request, possibly ``None``.

    Returns:
        The distinct non-empty stop strings.
    """
    seen: dict[str, None] = {}
    for stop in stops or ():
        if stop:
            seen.setdefault(stop, None)
    return list(seen)


class StopStringBuffer:
    """Holds back streamed text that might be the start of a stop string.

    Text pushed in comes out as soon as it cannot be part of a stop string. When a stop
    string appears, the text before it comes out, the stop string and anything after it
    never do, and :attr:`stopped` turns true.

    Example:
        >>> buf = StopStringBuffer(["User:"])
        >>> buf.push("Hello. Us")
        'Hello. '
        >>> buf.push("er: hi")
        ''
        >>> buf.stopped
        True
    """

    def __init__(self, stops: Sequence[str] | None) -> None:
        self._stops = normalize_stops(stops)
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Add newly decoded text and return what may be shown now.

        Args:
            text: The next piece of decoded text.

        Returns:
            Text safe to emit (possibly empty). After a stop string was found, always
            empty.
        """
        if self.stopped:
            return ""
        buffer = self._held + text
        if not self._stops:
            self._held = ""
            return buffer
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return buffer[:cut]
        hold = self._partial_match_length(buffer)
        self._held = buffer[len(buffer) - hold :]
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """Return the held-back text once no more text will come (EOS or length)."""
        if self.stopped:
            return ""
        held, self._held = self._held, ""
        return held

    def _partial_match_length(self, buffer: str) -> int:
        """Length of the longest end of ``buffer`` that begins some stop string."""
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest


class IncrementalDecoder:
    """Turns a growing list of token ids into text pieces, one token at a time.

    Decoding every token alone breaks multi-byte characters split across tokens and
    tokenizers that join tokens with context-dependent spacing, while decoding the
    whole sequence each step costs quadratic time. This decodes a short window: the text
    of ``ids[prefix:]`` minus the text of ``ids[prefix:read]`` is the new piece, and a
    piece ending in U+FFFD (an incomplete UTF-8 sequence) waits for the next token.
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        """Create a decoder.

        Args:
            decode: Decodes token ids to text, skipping special tokens.
        """
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        """Add one token and return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        return self._advance(final=False)

    def flush(self) -> str:
        """Return any text still waiting for a continuation that will not come."""
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> str:
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) <= len(prefix_text) or (new_text.endswith("\ufffd") and not final):
            return ""
        piece = new_text[len(prefix_text) :]
        self._prefix = self._read
        self._read = len(self._ids)
        return piece


class ReplyBuilder:
    """One reply, token by token: its text, its end (EOS, stop string, budget) and usage.

    The single-request decode loop and the batch scheduler both feed sampled tokens
    through one of these, so a reply ends and streams the same way on either path.

    Example:
        >>> reply = ReplyBuilder(
        ...     lambda ids: "".join(chr(i) for i in ids), prompt_tokens=3, max_new_tokens=5,
        ...     stop=["c"], eos_ids={0}, ignore_eos=False,
        ... )
        >>> [reply.push(i) for i in (97, 98, 99)], reply.done
        (['a', 'b', ''], True)
        >>> end = reply.final()
        >>> end.usage.completion_tokens, end.finish_reason
        (3, 'stop')
    """

    def __init__(
        self,
        decode: Callable[[list[int]], str],
        *,
        prompt_tokens: int,
        max_new_tokens: int,
        stop: Sequence[str] | None,
        eos_ids: Collection[int],
        ignore_eos: bool,
    ) -> None:
        """Start an empty reply.

        Args:
            decode: Token ids to text, special tokens skipped.
            prompt_tokens: Tokens of the prompt, for the usage.
            max_new_tokens: Most tokens to sample.
            stop: Strings that end the reply, never emitted themselves.
            eos_ids: Tokens that end the reply (unless ``ignore_eos``).
            ignore_eos: Keep going past end-of-sequence tokens.
        """
        self._decoder = IncrementalDecoder(decode)
        self._stops = StopStringBuffer(stop)
        self._eos_ids = eos_ids
        self._ignore_eos = ignore_eos
        self._prompt_tokens = prompt_tokens
        self._max_new_tokens = max_new_tokens
        self.sampled = 0
        self._ended = False  # by EOS

    @property
    def done(self) -> bool:
        """Whether the reply has ended: no more tokens should be sampled for it."""
        return self._ended or self._stops.stopped or self.sampled >= self._max_new_tokens

    def push(self, token_id: int) -> str:
        """Add a sampled token; return the text it lets through (possibly empty)."""
        self.sampled += 1
        if token_id in self._eos_ids and not self._ignore_eos:
            self._ended = True
            return ""
        return self._stops.push(self._decoder.push(token_id))

    def final(self) -> GenerationChunk:
        """The last chunk: text held back until the end, usage and finish reason."""
        tail = ""
        if not self._stops.stopped:
            # A last, held-back character may still complete a stop string.
            tail = self._stops.push(self._decoder.flush())
            tail += self._stops.flush()
        usage = Usage(prompt_tokens=self._prompt_tokens, completion_tokens=self.sampled)
        stopped = self._ended or self._stops.stopped
        return GenerationChunk(tail, usage=usage, finish_reason="stop" if stopped else "length")
