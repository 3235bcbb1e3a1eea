"""The stop-string holdback and the incremental detokenizer (pure, no model)."""

from __future__ import annotations

import random

import pytest

from adapters.streaming import IncrementalDecoder, StopStringBuffer, normalize_stops


def feed(stops: list[str] | None, pieces: list[str]) -> tuple[list[str], bool]:
    buf = StopStringBuffer(stops)
    out = [buf.push(piece) for piece in pieces]
    if not buf.stopped:
        out.append(buf.flush())
    return out, buf.stopped


def test_without_stops_text_passes_through_at_once():
    out, stopped = feed(None, ["Hel", "lo"])
    assert out == ["Hel", "lo", ""]
    assert not stopped


def test_stop_inside_one_piece_cuts_before_it():
    out, stopped = feed(["\nUser:"], ["Hello\nUser: more"])
    assert out == ["Hello"]
    assert stopped


def test_stop_split_across_pieces_is_never_emitted():
    out, stopped = feed(["\nUser:"], ["Hel", "lo\nUs", "er:", " never"])
    assert "".join(out) == "Hello"
    assert out[1] == "lo"  # "\nUs" held back
    assert stopped


def test_partial_match_that_fails_is_released():
    out, stopped = feed(["Users"], ["Hi Us", "ually"])
    assert out == ["Hi ", "Usually", ""]
    assert not stopped


def test_held_text_comes_out_on_flush():
    buf = StopStringBuffer(["STOP"])
    assert buf.push("the end ST") == "the end "
    assert buf.flush() == "ST"
    assert buf.flush() == ""


def test_earliest_stop_wins():
    out, _ = feed(["b", "ab"], ["xab"])
    assert out == ["x"]


def test_overlapping_prefixes_char_by_char():
    out, stopped = feed(["aab"], list("aaab"))
    assert "".join(out) == "a"
    assert stopped


def test_nothing_after_stopped():
    buf = StopStringBuffer(["."])
    assert buf.push("One. Two") == "One"
    assert buf.push("more") == ""
    assert buf.flush() == ""


def test_normalize_drops_empty_and_duplicates_keeping_order():
    assert normalize_stops(["b", "", "a", "b"]) == ["b", "a"]
    assert normalize_stops(None) == []
    out, stopped = feed(["", ""], ["abc"])
    assert out == ["abc", ""]
    assert not stopped


@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_emits_exactly_the_text_before_the_first_stop(seed: int):
    rng = random.Random(seed)
    alphabet = "ab\n:"
    stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(2)]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 8))))
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    expected = text[: min(hits)] if hits else text
    out, stopped = feed(stops, pieces)
    assert "".join(out) == expected
    assert stopped == bool(hits)


def byte_decode(ids: list[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def test_incremental_decoder_waits_for_whole_characters():
    text = "héllo € 𝄞!"
    decoder = IncrementalDecoder(byte_decode)
    pieces = [decoder.push(b) for b in text.encode()]
    pieces.append(decoder.flush())
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)
    assert sum(1 for piece in pieces if piece) > 1


def test_incremental_decoder_flushes_an_unfinished_character():
    decoder = IncrementalDecoder(byte_decode)
    assert decoder.push(ord("a")) == "a"
    assert decoder.push(0xE2) == ""  # first byte of a three-byte character
    assert decoder.flush() == "\ufffd"


def test_incremental_decoder_keeps_context_dependent_spacing():
    # A decoder that, like some tokenizers, drops the leading space of a sequence.
    vocab = {1: " Hello", 2: " world", 3: "!"}

    def decode(ids: list[int]) -> str:
        return "".join(vocab[i] for i in ids).lstrip(" ")

    decoder = IncrementalDecoder(decode)
    pieces = [decoder.push(i) for i in (1, 2, 3)]
    assert "".join(pieces) == "Hello world!"
