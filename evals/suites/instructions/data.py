"""Labelled phrasings for instruction detection: instructions, revocations, look-alikes.

Each case is a user message and the profile updates it should cause, as
``(field, op, value)``; ``value`` is compared case-insensitively, and for free-form
standing rules (``instructions``/``add``) as a substring of the detected rule. Look-alikes
expect nothing. Written by hand for this project; ``split``: ``dev`` and ``test`` were both
seen while the rules were written (so their scores are optimistic); ``holdout1`` cases were
written afterwards and scored once (precision 1.000, recall 0.524), then the rules were
widened for its misses, so it is seen now too; ``holdout2``
(``evals/suites/instructions/holdout2.py``) was written blind by someone who never saw the
rules or these cases, and scored once: the honest estimate.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Expected = tuple[str, str, object]


class Case(NamedTuple):
    """One labelled message."""

    text: str
    expected: tuple[Expected, ...]
    kind: Literal["instruction", "revocation", "lookalike"]
    split: Literal["dev", "test", "holdout1", "holdout2"]


def _c(text: str, *expected: Expected, kind: str = "instruction", split: str = "dev") -> Case:
    return Case(text, tuple(expected), kind, split)  # type: ignore[arg-type]


NAME = "preferred_name"
CASES: tuple[Case, ...] = (
    # Names
    _c(
        "From now on call me Captain Coder and answer like a pirate.",
        (NAME, "set", "Captain Coder"),
        ("tone", "set", "like a pirate"),
    ),
    _c("Please call me Sam.", (NAME, "set", "Sam")),
    _c("can you call me captain from now on?", (NAME, "set", "Captain"), split="test"),
    _c("I'd like you to address me as Dr. Patel", (NAME, "set", "Dr. Patel"), split="test"),
    _c("You can call me Lou, everyone does.", (NAME, "set", "Lou")),
    _c("Hey, call me Maggie please", (NAME, "set", "Maggie"), split="test"),
    _c("refer to me as The Boss", (NAME, "set", "The Boss")),
    _c(
        "Ok so call me Jo. Also, what's the weather like on Mars?",
        (NAME, "set", "Jo"),
        split="test",
    ),
    # Languages
    _c("Always answer in French.", ("language", "set", "French")),
    _c("from now on reply in spanish please", ("language", "set", "Spanish"), split="test"),
    _c("Could you speak German to me from now on?", ("language", "set", "German")),
    _c("Switch to Italian.", ("language", "set", "Italian"), split="test"),
    _c("Let's go back to English", ("language", "set", "English")),
    _c(
        "Please respond only in Japanese going forward.",
        ("language", "set", "Japanese"),
        split="test",
    ),
    # Emoji, length, format, formality, tone
    _c("Stop using emoji.", ("formatting.emoji", "set", False)),
    _c("no more emojis please", ("formatting.emoji", "set", False), split="test"),
    _c("Please don't put emoji in your answers", ("formatting.emoji", "set", False)),
    _c("Feel free to use emoji!", ("formatting.emoji", "set", True), split="test"),
    _c("Use more emojis 🎉", ("formatting.emoji", "set", True)),
    _c("Shorter answers please.", ("verbosity", "set", "brief")),
    _c("Keep it brief from now on.", ("verbosity", "set", "brief"), split="test"),
    _c("Your answers are way too long.", ("verbosity", "set", "brief")),
    _c("Please be more concise", ("verbosity", "set", "brief"), split="test"),
    _c("I want you to give longer answers", ("verbosity", "set", "detailed")),
    _c("go into more detail from now on", ("verbosity", "set", "detailed"), split="test"),
    _c("No bullet points.", ("formatting.lists", "set", False)),
    _c("use bullet points going forward", ("formatting.lists", "set", True), split="test"),
    _c("Plain text only please, no markdown.", ("formatting.markdown", "set", False)),
    _c("Don't use markdown.", ("formatting.markdown", "set", False), split="test"),
    _c("Be more formal with me.", ("formality", "set", "formal")),
    _c("You can be less formal, it's fine", ("formality", "set", "casual"), split="test"),
    _c("keep it casual", ("formality", "set", "casual")),
    _c("Talk like a cowboy from now on", ("tone", "set", "like a cowboy"), split="test"),
    _c("Be more playful.", ("tone", "set", "playful")),
    _c("Please use a cheerful tone.", ("tone", "set", "cheerful"), split="test"),
    # Free-form standing rules
    _c(
        "From now on, end every answer with a question.",
        ("instructions", "add", "end every answer with a question"),
    ),
    _c("Always cite your sources.", ("instructions", "add", "cite your sources"), split="test"),
    _c("Never apologize.", ("instructions", "add", "never apologize")),
    _c(
        "Going forward, use metric units.",
        ("instructions", "add", "use metric units"),
        split="test",
    ),
    _c(
        "From now on don't explain the code unless I ask",
        ("instructions", "add", "explain the code unless i ask"),
    ),
    _c(
        "Please always include a code example.",
        ("instructions", "add", "include a code example"),
        split="test",
    ),
    # Forget
    _c("Forget that I live in Paris.", ("memories", "forget", "I live in Paris")),
    _c("please forget about my ex", ("memories", "forget", "my ex"), split="test"),
    _c("Forget what I said about the job interview.", ("memories", "forget", "the job interview")),
    # Revocations
    _c("You can stop calling me Captain.", (NAME, "unset", None), kind="revocation"),
    _c("Don't call me Sam anymore.", (NAME, "unset", None), kind="revocation", split="test"),
    _c("Just use my real name.", (NAME, "unset", None), kind="revocation"),
    _c("Stop answering in French.", ("language", "unset", None), kind="revocation", split="test"),
    _c("Drop the pirate act.", ("tone", "unset", None), kind="revocation"),
    _c(
        "You can stop talking like a pirate now",
        ("tone", "unset", None),
        kind="revocation",
        split="test",
    ),
    _c("Talk normally again please", ("tone", "unset", None), kind="revocation"),
    _c("Normal length is fine.", ("verbosity", "unset", None), kind="revocation", split="test"),
    _c(
        "Stop ending every answer with a question.",
        ("instructions", "remove", "ending every answer with a question"),
        kind="revocation",
    ),
    _c(
        "Forget my earlier instruction about metric units.",
        ("instructions", "remove", "metric units"),
        kind="revocation",
        split="test",
    ),
    # Look-alikes: nothing to change
    _c("My friend calls me Captain.", kind="lookalike"),
    _c("My kids call me Captain Coder, which is funny.", kind="lookalike", split="test"),
    _c("Why do people call me Doc?", kind="lookalike"),
    _c("Call me later, I'm busy.", kind="lookalike", split="test"),
    _c("Call me crazy, but I like pineapple on pizza.", kind="lookalike"),
    _c("Can you call me a taxi?", kind="lookalike", split="test"),
    _c('The novel starts with "Call me Ishmael."', kind="lookalike"),
    _c("I always answer emails in French at work.", kind="lookalike", split="test"),
    _c("My sister never uses emoji.", kind="lookalike"),
    _c("He told me to stop using emoji in work chats.", kind="lookalike", split="test"),
    _c("How do I say 'answer in French' in French?", kind="lookalike"),
    _c("My boss wants shorter answers in meetings.", kind="lookalike", split="test"),
    _c("I forget things all the time.", kind="lookalike"),
    _c("Don't forget to water the plants is on my list.", kind="lookalike", split="test"),
    _c("I stopped using Twitter last year.", kind="lookalike"),
    _c("What does 'from now on' mean in a contract?", kind="lookalike", split="test"),
    _c("They always reply in Spanish at that shop.", kind="lookalike"),
    _c("Is it rude to call my teacher by her first name?", kind="lookalike", split="test"),
    _c("I love how pirates talk, arr!", kind="lookalike"),
    _c("My grandpa talked like a pirate.", kind="lookalike", split="test"),
    _c("We always have pizza on Fridays.", kind="lookalike"),
    _c("I never apologize to my brother.", kind="lookalike", split="test"),
    _c("The app keeps using emoji in notifications, how do I turn that off?", kind="lookalike"),
    _c("Tell me about the French revolution.", kind="lookalike", split="test"),
    _c("Write a short poem about the sea.", kind="lookalike"),
    _c("Could you explain it in more simple terms?", kind="lookalike", split="test"),
    _c("Answer this in French: what is your name?", kind="lookalike"),
    # Holdout 1: written after the rules, scored once (R 0.524), then tuned on.
    _c("from here on out, call me Skipper", (NAME, "set", "Skipper"), split="holdout1"),
    _c("Would you mind calling me Bea?", (NAME, "set", "Bea"), split="holdout1"),
    _c("please just call me Tom, not Thomas", (NAME, "set", "Tom"), split="holdout1"),
    _c("I'd prefer you reply in Portuguese", ("language", "set", "Portuguese"), split="holdout1"),
    _c("can we switch to Dutch please", ("language", "set", "Dutch"), split="holdout1"),
    _c("Write to me in Polish from now on.", ("language", "set", "Polish"), split="holdout1"),
    _c("no emoji, ever", ("formatting.emoji", "set", False), split="holdout1"),
    _c("Too many emojis, tone it down", ("formatting.emoji", "set", False), split="holdout1"),
    _c("tl;dr style answers please", ("verbosity", "set", "brief"), split="holdout1"),
    _c("Make your replies shorter.", ("verbosity", "set", "brief"), split="holdout1"),
    _c("I need more detailed explanations", ("verbosity", "set", "detailed"), split="holdout1"),
    _c("Avoid lists, write in paragraphs.", ("formatting.lists", "set", False), split="holdout1"),
    _c("Be a bit more professional.", ("formality", "set", "formal"), split="holdout1"),
    _c(
        "Answer like a Shakespearean actor from now on",
        ("tone", "set", "like a shakespearean actor"),
        split="holdout1",
    ),
    _c(
        "From now on, sign off every reply with 'Cheers'.",
        ("instructions", "add", "sign off every reply with"),
        split="holdout1",
    ),
    _c(
        "Never use the word 'delve'.",
        ("instructions", "add", "never use the word"),
        split="holdout1",
    ),
    _c("Forget that I have a dog.", ("memories", "forget", "I have a dog"), split="holdout1"),
    _c(
        "OK you can stop with the pirate voice",
        ("tone", "unset", None),
        kind="revocation",
        split="holdout1",
    ),
    _c(
        "Please stop calling me Skipper.",
        (NAME, "unset", None),
        kind="revocation",
        split="holdout1",
    ),
    _c(
        "You don't have to answer in Polish anymore.",
        ("language", "unset", None),
        kind="revocation",
        split="holdout1",
    ),
    _c(
        "Emoji are fine again.",
        ("formatting.emoji", "set", True),
        kind="revocation",
        split="holdout1",
    ),
    _c("My coach calls me Speedy.", kind="lookalike", split="holdout1"),
    _c("Everyone at work calls me Jay.", kind="lookalike", split="holdout1"),
    _c("Should I call my landlord tomorrow?", kind="lookalike", split="holdout1"),
    _c("My mother always answers in Italian when she's angry.", kind="lookalike", split="holdout1"),
    _c(
        "The teacher said to stop using bullet points in essays.",
        kind="lookalike",
        split="holdout1",
    ),
    _c("I'm trying to be more concise in my emails.", kind="lookalike", split="holdout1"),
    _c("Can you translate 'good morning' into German?", kind="lookalike", split="holdout1"),
    _c("I forgot that I had a dentist appointment.", kind="lookalike", split="holdout1"),
    _c("Pirates never apologize, right?", kind="lookalike", split="holdout1"),
)
