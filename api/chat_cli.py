"""The interactive terminal chat behind ``attune chat``."""

from __future__ import annotations

import sys
from collections.abc import Callable

from wiring.settings import Settings


def _prompt() -> str | None:
    try:
        return input("\nyou> ")
    except (EOFError, KeyboardInterrupt):
        return None


def _loop(turn: Callable[[str, str | None], str | None], thread: str | None) -> None:
    print("Attune chat. /new starts a new thread, /quit leaves.", file=sys.stderr)
    while (line := _prompt()) is not None:
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/new":
            thread = None
            print("(new thread)", file=sys.stderr)
            continue
        thread = turn(text, thread)


def chat_remote(url: str, key: str, thread: str | None, max_tokens: int, show_meta: bool) -> None:
    """Chat with a running server through the OpenAI client."""
    from openai import OpenAI, OpenAIError

    client = OpenAI(base_url=url.rstrip("/") + "/v1", api_key=key)

    def turn(text: str, thread_id: str | None) -> str | None:
        extra = {"thread_id": thread_id} if thread_id else {}
        print("attune> ", end="", flush=True)
        try:
            stream = client.chat.completions.create(
                model="attune",
                messages=[{"role": "user", "content": text}],
                max_tokens=max_tokens,
                stream=True,
                extra_body=extra,
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    print(chunk.choices[0].delta.content, end="", flush=True)
                meta = (chunk.model_extra or {}).get("attune")
                if meta:
                    thread_id = meta["thread_id"]
                    if show_meta:
                        print(f"\n  [{meta['turn_id']} · {meta['target']}]", file=sys.stderr)
        except OpenAIError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
        print()
        return thread_id

    _loop(turn, thread)


async def chat_local(
    settings: Settings, user_id: str | None, thread: str | None, max_tokens: int, show_meta: bool
) -> None:
    """Chat in-process: the same graph and records as the server, no HTTP."""
    import asyncio

    from api.services import open_services
    from graph.runner import ChatMessage, DoneEvent, ErrorEvent, TokenEvent, TurnRequest
    from graph.state import GenerationParams
    from memory.records import repo

    async with open_services(settings) as services:
        if user_id is None:
            with services.store.session() as session:
                users = repo.list_users(session, limit=1)
            if not users:
                print("no users yet: run 'attune users create NAME'", file=sys.stderr)
                return
            user_id = users[0].id
        loop = asyncio.get_running_loop()

        async def run(text: str, thread_id: str | None) -> str | None:
            request = TurnRequest(
                messages=[ChatMessage(role="user", content=text)],
                params=GenerationParams(model="attune", max_tokens=max_tokens),
                thread_id=thread_id,
            )
            assert user_id is not None
            stream = services.runner.start(await services.runner.prepare(user_id, request))
            print("attune> ", end="", flush=True)
            async for event in stream.events():
                if isinstance(event, TokenEvent):
                    print(event.text, end="", flush=True)
                elif isinstance(event, DoneEvent):
                    if show_meta:
                        r = event.result
                        print(f"\n  [{r.turn_id} · {r.target}]", file=sys.stderr)
                    thread_id = event.result.thread_id
                elif isinstance(event, ErrorEvent):
                    print(f"\nerror: {event.error}", file=sys.stderr)
            print()
            return thread_id

        def turn(text: str, thread_id: str | None) -> str | None:
            return asyncio.run_coroutine_threadsafe(run(text, thread_id), loop).result()

        await asyncio.to_thread(_loop, turn, thread)
