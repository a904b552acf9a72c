"""A minimal OpenAI chat-completions client over HTTP, for providers served by another process.

Returns the completion JSON, or (streaming) an async iterator of the assistant's text deltas.
Error bodies ``{"error": {"message", "code"}}`` become :class:`ClawRouterError` with the same
status and message; an unreachable server becomes :class:`UpstreamError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from ..errors import ClawRouterError, UpstreamError


def _timeout(read_seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_seconds)


async def _raise_for(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    try:
        error = (await response.json(content_type=None)).get("error") or {}
    except (ValueError, AttributeError, aiohttp.ClientError):
        error = {}
    message = error.get("message") if isinstance(error, dict) else None
    raise ClawRouterError(str(message or f"HTTP {response.status} from {response.url}"),
                          code=error.get("code") if isinstance(error, dict) else None,
                          status=response.status)


async def http_completion(url: str, body: dict[str, Any], headers: Mapping[str, str], *,
                          read_timeout: float = 300) -> dict[str, Any] | AsyncIterator[str]:
    """POST ``body`` to ``url``; a streaming body gives text deltas."""
    if body.get("stream") is True:
        return _stream(url, body, headers, read_timeout)
    try:
        async with aiohttp.ClientSession(timeout=_timeout(read_timeout)) as session, \
                session.post(url, json=body, headers=dict(headers)) as response:
            await _raise_for(response)
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"cannot reach {url}: {type(exc).__name__}") from None


async def _stream(url: str, body: dict[str, Any], headers: Mapping[str, str],
                  read_timeout: float) -> AsyncIterator[str]:
    try:
        async with aiohttp.ClientSession(timeout=_timeout(read_timeout)) as session, \
                session.post(url, json=body, headers=dict(headers)) as response:
            await _raise_for(response)
            async for raw in response.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return
                chunk = json.loads(payload)
                if isinstance(chunk.get("error"), dict):
                    raise UpstreamError(str(chunk["error"].get("message") or "stream error"))
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(f"cannot reach {url}: {type(exc).__name__}") from None
    except ValueError:
        raise UpstreamError(f"{url} sent a malformed stream") from None
