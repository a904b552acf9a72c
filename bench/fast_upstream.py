"""A fast, free (no x402) OpenAI-style upstream for benchmarks: ``python bench/fast_upstream.py PORT``.

Runs on uvloop so that it takes as little of the machine's two cores as it can.
"""

from __future__ import annotations

import json
import sys
import time

from aiohttp import web

REPLY = "The quick brown fox jumps over the lazy dog."


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    model = body.get("model", "unknown")
    if not body.get("stream"):
        return web.json_response({
            "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
        })
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": model}
    for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": REPLY}, None),
                          ({}, "stop")):
        event = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def main() -> None:
    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", chat)
    import uvloop

    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
                loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
