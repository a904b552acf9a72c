"""Session ids and the pin store."""

import pytest

from clawrouter_plugin.state.sessions import Pin, SessionStore, session_id


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def convo(*user_turns, system="You are OpenClaw."):
    messages = [{"role": "system", "content": system}]
    for i, text in enumerate(user_turns):
        if i:
            messages.append({"role": "assistant", "content": f"answer {i}"})
        messages.append({"role": "user", "content": text})
    return {"model": "blockrun/auto", "messages": messages}


def test_header_wins_case_insensitively():
    body = convo("hi") | {"user": "u1"}
    assert session_id({"X-Session-Id": " abc "}, body) == "abc"
    assert session_id({"x-session-id": "abc"}, body) == "abc"


def test_body_user_then_metadata():
    assert session_id({}, convo("hi") | {"user": "alice"}) == "alice"
    assert session_id({}, convo("hi") | {"metadata": {"session_id": "s-1"}}) == "s-1"
    assert session_id({}, convo("hi") | {"metadata": {"conversation_id": 42}}) == "42"
    assert session_id({"x-session-id": "  "}, convo("hi") | {"user": "bob"}) == "bob"


def test_overlong_ids_are_hashed():
    sid = session_id({"x-session-id": "x" * 500}, {})
    assert len(sid) == 32 and sid == session_id({"x-session-id": "x" * 500}, {})


@pytest.mark.parametrize("raw", ["bob\r\ninjected: 1", "x\ny", "nul\x00byte", "del\x7f"])
def test_ids_that_cannot_be_header_values_are_hashed(raw):
    """The id goes back in the x-clawrouter-session response header."""
    sid = session_id({}, convo("hi") | {"user": raw})
    assert len(sid) == 32 and sid.isalnum()
    assert sid == session_id({}, convo("other") | {"metadata": {"session_id": raw}})  # stable
    assert session_id({}, convo("hi") | {"user": "tab\there"}) == "tab\there"  # tab is allowed


def test_derived_id_is_stable_across_turns():
    first = session_id({}, convo("Build a React component"))
    second = session_id({}, convo("Build a React component", "Add dark mode support"))
    third = session_id({}, convo("Build a React component", "Add dark mode", "Now add tests"))
    assert first == second == third
    assert len(first) == 16 and int(first, 16) >= 0


def test_derived_id_differs_between_conversations():
    a = session_id({}, convo("Build a React component"))
    assert a != session_id({}, convo("Write a poem"))
    assert a != session_id({}, convo("Build a React component", system="Other agent"))


def test_derived_id_handles_odd_bodies():
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert session_id({}, parts) == session_id({}, parts)
    assert len(session_id({}, {})) == 16
    assert len(session_id({}, {"messages": "nonsense"})) == 16


async def test_pin_get_touch_and_set_model():
    clock = Clock()
    store = SessionStore(ttl_seconds=60, clock=clock)
    assert await store.get("s") is None
    pinned = await store.pin("s", "openai/gpt-4o", "MEDIUM", "auto")
    assert pinned == Pin("openai/gpt-4o", "MEDIUM", "auto", 1, 1000.0)
    clock.now += 10
    await store.touch("s")
    await store.set_model("s", "openai/gpt-4o-mini")
    assert await store.get("s") == Pin("openai/gpt-4o-mini", "MEDIUM", "auto", 2, 1010.0)
    clock.now += 5
    assert (await store.pin("s", "anthropic/claude-sonnet-4.6", "COMPLEX", "auto")).requests == 3


async def test_returned_pins_are_copies():
    store = SessionStore(clock=Clock())
    (await store.pin("s", "m", "SIMPLE", "auto")).model = "changed"
    (await store.get("s")).tier = "changed"
    assert (await store.get("s")).model == "m" and (await store.get("s")).tier == "SIMPLE"


async def test_pins_expire_when_idle():
    clock = Clock()
    store = SessionStore(ttl_seconds=60, clock=clock)
    await store.pin("s", "m", "SIMPLE", "auto")
    clock.now += 50
    await store.touch("s")
    clock.now += 50  # 100 s after creation but only 50 s idle
    assert await store.get("s") is not None
    clock.now += 61
    assert await store.get("s") is None
    await store.touch("s")
    await store.set_model("s", "x")
    assert await store.get("s") is None and len(store) == 0


async def test_len_counts_live_sessions_only():
    clock = Clock()
    store = SessionStore(ttl_seconds=60, clock=clock)
    await store.pin("a", "m", "SIMPLE", "auto")
    clock.now += 30
    await store.pin("b", "m", "SIMPLE", "auto")
    assert len(store) == 2
    clock.now += 40
    assert len(store) == 1


async def test_memory_is_bounded():
    clock = Clock()
    store = SessionStore(ttl_seconds=60, clock=clock, max_sessions=3)
    for sid in ("a", "b", "c"):
        await store.pin(sid, "m", "SIMPLE", "auto")
        clock.now += 1
    await store.touch("a")  # b is now the least recently used
    await store.pin("d", "m", "SIMPLE", "auto")
    assert await store.get("b") is None
    assert all([await store.get(s) is not None for s in ("a", "c", "d")])
    assert len(store) == 3


async def test_expired_sessions_are_pruned_before_live_ones():
    clock = Clock()
    store = SessionStore(ttl_seconds=60, clock=clock, max_sessions=3)
    await store.pin("old", "m", "SIMPLE", "auto")
    clock.now += 100
    await store.pin("a", "m", "SIMPLE", "auto")
    await store.pin("b", "m", "SIMPLE", "auto")
    await store.pin("c", "m", "SIMPLE", "auto")
    assert all([await store.get(s) is not None for s in ("a", "b", "c")])


async def test_many_sessions_stay_bounded():
    clock = Clock()
    store = SessionStore(clock=clock, max_sessions=100)
    for i in range(5000):
        await store.pin(f"s{i}", "m", "SIMPLE", "auto")
    assert len(store) == 100
    assert await store.get("s4999") is not None and await store.get("s0") is None


async def test_preferences():
    clock = Clock()
    store = SessionStore(ttl_seconds=60, clock=clock)
    assert await store.preference("s") is None
    await store.set_preference("s", "anthropic/claude-sonnet-4.6")
    clock.now += 50
    assert await store.preference("s") == "anthropic/claude-sonnet-4.6"  # also keeps it alive
    clock.now += 50
    assert await store.preference("s") == "anthropic/claude-sonnet-4.6"
    clock.now += 61
    assert await store.preference("s") is None


async def test_clear_one_or_all():
    store = SessionStore(clock=Clock())
    for sid in ("a", "b"):
        await store.pin(sid, "m", "SIMPLE", "auto")
        await store.set_preference(sid, "m")
    await store.clear("a")
    assert await store.get("a") is None and await store.preference("a") is None
    assert await store.get("b") is not None
    await store.clear()
    assert len(store) == 0 and await store.preference("b") is None


def test_invalid_ttl_is_rejected():
    with pytest.raises(ValueError):
        SessionStore(ttl_seconds=0)


def test_derived_id_of_an_openclaw_conversation_is_stable_and_ignores_host_blocks():
    from tests.support.host_shapes import openclaw_turn

    first = session_id({}, openclaw_turn("Build a React component"))
    second = openclaw_turn("Add dark mode", earlier=(("Build a React component", "Done."),))
    assert session_id({}, second) == first
    # the host may keep the first message without its Runtime line on later turns
    second["messages"][1]["content"] = second["messages"][1]["content"].split("\n\nRuntime:")[0]
    assert session_id({}, second) == first
    # another conversation opened with the same words at another time is another session
    other = openclaw_turn("Build a React component")
    other["messages"][1]["content"] = other["messages"][1]["content"].replace("07:45", "09:12")
    assert session_id({}, other) != first
