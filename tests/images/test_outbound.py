"""The outbound URL policy: image URLs never reach loopback, private or the proxy's own address.

A loopback server counts every hit; each refused URL must give 0 hits, 0 settlements and the
one generic error, whatever the reason it failed.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from aiohttp import web

from clawrouter_plugin.outbound import OutboundPolicy, address_kind
from tests.images.imagedata import png
from tests.support.x402_upstream import IMAGE_EDIT_PATH

GENERIC = "image: could not fetch the image at that URL"


@pytest.fixture
async def target(aiohttp_server):
    """A loopback server that counts hits: /img.png is a PNG, /page a web page, else 404;
    /to/<url-path> redirects to the path given."""
    hits: list[str] = []
    hosts: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        hosts.append(request.headers.get("Host", ""))
        if request.path == "/img.png":
            return web.Response(body=png(), content_type="image/png")
        if request.path == "/page":
            return web.Response(text="<html>admin</html>", content_type="text/html")
        if request.path.startswith("/to/"):
            raise web.HTTPFound(request.query["url"])
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    server.hits, server.hosts = hits, hosts
    return server


async def edit(env, image: str) -> tuple[int, dict]:
    resp = await asyncio.wait_for(env.client.post(
        "/v1/images/image2image", json={"prompt": "make it blue", "image": image}), 10)
    return resp.status, await resp.json()


def assert_refused(env, code: int, body: dict) -> None:
    """The generic 400, and nothing paid or sent to the paid route."""
    assert code == 400, body
    assert body["error"]["message"] == GENERIC, body
    assert body["error"]["code"] == "image_download_failed"
    assert env.upstream.count(path=IMAGE_EDIT_PATH) == 0
    assert env.upstream.ledger.settlements == []


def use_policy(env, **options) -> OutboundPolicy:
    """Replace the service's policy (same own URL and trusted upstream) with ``options``."""
    policy = OutboundPolicy(own_url=lambda: env.public["url"], trusted=(env.upstream.url,),
                            **options)
    env.service.outbound = policy
    return policy


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "0.0.0.0", "[::ffff:127.0.0.1]", "[::1]", "2130706433",
    "0177.0.0.1", "127.1", "[::127.0.0.1]", "[2002:7f00:1::]",
])
async def test_loopback_spellings_are_refused_before_connecting(image_env, target, host):
    code, body = await edit(image_env, f"http://{host}:{target.port}/img.png")
    assert_refused(image_env, code, body)
    assert target.hits == []


async def test_a_public_looking_name_resolving_to_loopback_is_refused(image_env, target):
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return {"images.example.com": ["127.0.0.1"]}[host]

    use_policy(image_env, resolver=resolver)
    code, body = await edit(image_env, f"http://images.example.com:{target.port}/img.png")
    assert_refused(image_env, code, body)
    assert calls == ["images.example.com"] and target.hits == []


async def test_the_connection_goes_to_the_checked_address_only(image_env, target):
    """DNS rebinding: the name is resolved once per hop and the connection uses that answer
    (a second resolution would answer a public address... and fail the test)."""
    answers = iter([["127.0.0.1"]])
    calls: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers, ["93.184.216.34"])

    use_policy(image_env, resolver=resolver, allow_private=True)  # so the checked one passes
    code, body = await edit(image_env, f"http://rebind.example:{target.port}/img.png")
    assert code == 200, body
    assert calls == ["rebind.example"] and target.hits == ["/img.png"]
    assert target.hosts == [f"rebind.example:{target.port}"]  # the name, not the address
    assert len(image_env.upstream.ledger.settlements) == 1


async def test_a_name_resolving_to_public_and_private_addresses_is_refused(image_env, target):
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    use_policy(image_env, resolver=resolver)
    code, body = await edit(image_env, f"http://mixed.example:{target.port}/img.png")
    assert_refused(image_env, code, body)


async def test_a_redirect_to_loopback_is_checked_again_and_refused(image_env, target):
    """The first hop is allowed (the configured upstream is trusted); its redirect to another
    loopback port is not."""
    env = image_env

    async def redirect(_call) -> web.StreamResponse:
        raise web.HTTPFound(f"http://127.0.0.1:{target.port}/img.png")

    env.upstream.set_handler("/hop", redirect)
    code, body = await edit(env, f"{env.upstream.url}/hop")
    assert env.upstream.count(path="/hop") == 1  # the first hop was fetched
    assert_refused(env, code, body)
    assert target.hits == []


async def test_the_proxy_itself_is_refused_even_with_the_opt_in(image_env, target):
    env = image_env
    env.allow_private_urls()
    name = env.store.save(png()).path.name
    port = env.client.port
    for url in (f"http://localhost:{port}/images/{name}", f"http://127.0.0.1:{port}/images/{name}",
                f"http://[::ffff:127.0.0.1]:{port}/images/{name}",
                f"http://127.0.0.1:{target.port}/to/x?url=http://localhost:{port}/images/{name}"):
        code, body = await edit(env, url)
        assert_refused(env, code, body)
    assert target.hits == ["/to/x"]  # the redirect was followed no further


async def test_the_opt_in_allows_loopback(image_env, target):
    env = image_env
    env.allow_private_urls()
    code, body = await edit(env, f"http://127.0.0.1:{target.port}/img.png")
    assert code == 200, body
    assert target.hits == ["/img.png"] and len(env.upstream.ledger.settlements) == 1


async def test_every_failure_reads_the_same(image_env, target, unused_tcp_port):
    """A closed port, a 404, a web page and a redirect loop: one text, so the error cannot be
    used to map what listens where (with the opt-in on, so they are really fetched)."""
    env = image_env
    env.allow_private_urls()
    loop = f"http://127.0.0.1:{target.port}/to/a?url=/to/b%3Furl%3D/to/c%253Furl%253D/img.png"
    for url in (f"http://127.0.0.1:{unused_tcp_port}/img.png",
                f"http://127.0.0.1:{target.port}/missing.png",
                f"http://127.0.0.1:{target.port}/page", loop):
        code, body = await edit(env, url)
        assert_refused(env, code, body)
        assert str(unused_tcp_port) not in str(body) and "404" not in str(body)


@pytest.mark.parametrize(("address", "kind"), [
    ("93.184.216.34", "public"), ("2606:2800:220:1::", "public"),
    ("::ffff:93.184.216.34", "public"),
    ("127.0.0.1", "private"), ("127.8.9.10", "private"), ("10.1.2.3", "private"),
    ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "private"),
    ("100.64.0.1", "private"), ("::1", "private"), ("fe80::1", "private"),
    ("fc00::1", "private"), ("fec0::1", "private"), ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "private"), ("64:ff9b::7f00:1", "private"),
    ("2002:a00:1::", "private"),
    ("0.0.0.0", "forbidden"), ("::", "forbidden"), ("224.0.0.1", "forbidden"),
    ("ff02::1", "forbidden"), ("255.255.255.255", "forbidden"), ("240.0.0.1", "forbidden"),
    ("::ffff:0.0.0.0", "forbidden"), ("::ffff:224.0.0.251", "forbidden"),
])
def test_address_kinds(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind
