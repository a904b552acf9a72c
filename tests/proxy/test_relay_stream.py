"""Relaying an upstream SSE stream: events split anywhere across reads are put back together."""

import asyncio
import json
from unittest import mock

import aiohttp
import pytest

from clawrouter_plugin.proxy.reply import ChunkChannel
from clawrouter_plugin.proxy.upstream_chat import _Failed, _relay_stream


def chunk(text: str, finish: str | None = None) -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return b"data: " + json.dumps(event).encode() + b"\r\n\r\n"


def reader(pieces: list[bytes]) -> aiohttp.StreamReader:
    stream = aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16,
                                  loop=asyncio.get_running_loop())
    for piece in pieces:
        stream.feed_data(piece)
    stream.feed_eof()
    return stream


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 64, 10_000])
async def test_events_split_anywhere_are_relayed_in_order(size):
    data = (b": keep-alive\n\n" + chunk("Hel") + chunk("lo") + b"event: ping\n\n"
            + chunk("!", "stop") + b"data: [DONE]\n\n" + b"data: ignored after done\n\n")
    sink = ChunkChannel()
    completion = await _relay_stream(reader(cut(data, size)), sink)
    relayed = sink.drain()
    assert [c["choices"][0]["delta"]["content"] for c in relayed] == ["Hel", "lo", "!"]
    assert completion["choices"][0]["message"]["content"] == "Hello!"
    assert completion["choices"][0]["finish_reason"] == "stop"


async def test_done_without_a_final_newline_counts():
    sink = ChunkChannel()
    completion = await _relay_stream(reader([chunk("ok", "stop") + b"data: [DONE]"]), sink)
    assert completion["choices"][0]["message"]["content"] == "ok"


async def test_a_stream_cut_before_done_is_a_failure():
    with pytest.raises(_Failed) as failure:
        await _relay_stream(reader([chunk("partial")]), ChunkChannel())
    assert "without [DONE]" in failure.value.error.message and not failure.value.retry


async def test_an_error_event_before_any_chunk_may_be_retried():
    error = b'data: {"error": {"message": "model overloaded"}}\n\n'
    with pytest.raises(_Failed) as failure:
        await _relay_stream(reader([error]), ChunkChannel())
    assert "model overloaded" in failure.value.error.message and failure.value.retry


async def test_an_endless_event_is_refused_instead_of_filling_memory(monkeypatch):
    from clawrouter_plugin.proxy import upstream_chat

    monkeypatch.setattr(upstream_chat, "MAX_EVENT_BYTES", 1000)
    endless = [b"data: {\"choices\": [\"" + b"x" * 400 for _ in range(5)]  # no newline, ever
    with pytest.raises(_Failed) as failure:
        await _relay_stream(reader(endless), ChunkChannel())
    assert "larger than" in failure.value.error.message and failure.value.retry
