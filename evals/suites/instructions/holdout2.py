"""Second held-out set for instruction detection.

Written blind (without seeing the rules or the other cases).
"""

from __future__ import annotations

from evals.suites.instructions.data import Case

NAME = "preferred_name"
CASES_HOLDOUT2: tuple[Case, ...] = (
    # ---------------------------------------------------------------- instructions (25)
    Case("Please call me Sam from now on.", ((NAME, "set", "Sam"),), "instruction", "holdout2"),
    Case(
        "hi there! you can call me Pri from now on, everyone does",
        ((NAME, "set", "Pri"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "MY NAME IS JORDAN. PLEASE CALL ME JORDAN.",
        ((NAME, "set", "Jordan"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "From now on, please reply in Spanish.",
        (("language", "set", "Spanish"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "frm now on pls answr in Italian",
        (("language", "set", "Italian"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Talk Like A Pirate from now on!!",
        (("tone", "set", "like a pirate"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Could you talk like a cowboy from now on? It would make my day.",
        (("tone", "set", "like a cowboy"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Be more playful with me going forward.",
        (("tone", "set", "playful"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Please keep things formal with me from now on.",
        (("formality", "set", "formal"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "You can be casual with me from now on, no need for the stiff corporate stuff.",
        (("formality", "set", "casual"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Keep your answers brief from now on.",
        (("verbosity", "set", "brief"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "I'd like detailed answers from now on, please. Don't hold back on the depth.",
        (("verbosity", "set", "detailed"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Please stop using emoji in your replies.",
        (("formatting.emoji", "set", False),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Feel free to use emojis in your replies from now on 😊",
        (("formatting.emoji", "set", True),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Always use bullet points when you answer me.",
        (("formatting.lists", "set", True),),
        "instruction",
        "holdout2",
    ),
    Case(
        "no bullet lists please, i prefer plain paragraphs from now on",
        (("formatting.lists", "set", False),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Please don't use markdown in your responses anymore, it shows up as raw "
        "asterisks in my app.",
        (("formatting.markdown", "set", False),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Use markdown formatting in all your answers from now on.",
        (("formatting.markdown", "set", True),),
        "instruction",
        "holdout2",
    ),
    Case(
        "From now on, always end with a summary.",
        (("instructions", "add", "end with a summary"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Going forward, always include code examples when you explain something.",
        (("instructions", "add", "include code examples"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Remember to always cite your sources from now on.",
        (("instructions", "add", "cite your sources"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Call me Alex and reply in French from now on.",
        ((NAME, "set", "Alex"), ("language", "set", "French")),
        "instruction",
        "holdout2",
    ),
    Case(
        "What's the capital of Peru? Also, from now on keep your answers brief.",
        (("verbosity", "set", "brief"),),
        "instruction",
        "holdout2",
    ),
    Case(
        "Good morning! Please always be formal with me, and no emojis from now on.",
        (("formality", "set", "formal"), ("formatting.emoji", "set", False)),
        "instruction",
        "holdout2",
    ),
    Case(
        "hey, a few things going forward: call me Mo, keep it casual, and no markdown please.",
        (
            (NAME, "set", "Mo"),
            ("formality", "set", "casual"),
            ("formatting.markdown", "set", False),
        ),
        "instruction",
        "holdout2",
    ),
    # ---------------------------------------------------------------- revocations (12)
    Case(
        "You can stop talking like a pirate now.",
        (("tone", "unset", None),),
        "revocation",
        "holdout2",
    ),
    Case(
        "Drop the playful tone, please.",
        (("tone", "unset", None),),
        "revocation",
        "holdout2",
    ),
    Case("Stop calling me Sam.", ((NAME, "unset", None),), "revocation", "holdout2"),
    Case(
        "Please don't call me by a nickname anymore.",
        ((NAME, "unset", None),),
        "revocation",
        "holdout2",
    ),
    Case(
        "You don't need to reply in Spanish anymore.",
        (("language", "unset", None),),
        "revocation",
        "holdout2",
    ),
    Case(
        "You don't have to keep your answers short anymore.",
        (("verbosity", "unset", None),),
        "revocation",
        "holdout2",
    ),
    Case(
        "Forget that I live in Paris.",
        (("memories", "forget", "I live in Paris"),),
        "revocation",
        "holdout2",
    ),
    Case(
        "please forget that I have a cat, she passed away last month",
        (("memories", "forget", "I have a cat"),),
        "revocation",
        "holdout2",
    ),
    Case(
        "Forget that I'm vegetarian. I eat meat again.",
        (("memories", "forget", "I'm vegetarian"),),
        "revocation",
        "holdout2",
    ),
    Case(
        "You no longer need to end with a summary.",
        (("instructions", "remove", "end with a summary"),),
        "revocation",
        "holdout2",
    ),
    Case(
        "Stop including code examples in every answer.",
        (("instructions", "remove", "code examples"),),
        "revocation",
        "holdout2",
    ),
    Case(
        "Thanks for that! Oh and you can stop citing your sources now.",
        (("instructions", "remove", "citing your sources"),),
        "revocation",
        "holdout2",
    ),
    # ---------------------------------------------------------------- look-alikes (23)
    Case("My boss calls me Chief, which is kind of funny.", (), "lookalike", "holdout2"),
    Case(
        "My daughter wants everyone to call her Princess.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "My friend said 'call me Ishmael' as a joke yesterday.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "How do I tell my coworkers to call me Liz instead of Elizabeth?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Answer this in French: how do I say good morning?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case("Can you make that shorter?", (), "lookalike", "holdout2"),
    Case(
        "Give me a detailed explanation of how vaccines work.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Can you rewrite just this paragraph in a more casual tone?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "For this email only, use a formal tone.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Can you list the pros and cons in bullet points?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case("I never use emoji in work emails.", (), "lookalike", "holdout2"),
    Case(
        "I always write in bullet points when I take notes.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "I speak Spanish at home but English at work.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "What does 'talk like a pirate day' actually celebrate?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Translate 'from now on, always be brief' into German.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Write a story where the captain shouts 'from now on, speak like a pirate!'",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "When I was a kid, my teacher made us always end with a summary.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Last year I told my old assistant to speak formally and it was awkward.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "She told him to stop using emojis in the group chat.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Is it rude to ask someone to stop calling me by my nickname?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "I forgot that I had a dentist appointment today, ugh.",
        (),
        "lookalike",
        "holdout2",
    ),
    Case(
        "Why do New Yorkers say 'forget about it' all the time?",
        (),
        "lookalike",
        "holdout2",
    ),
    Case("Do you support markdown tables?", (), "lookalike", "holdout2"),
)
