"""POST /v1/images/generations against the x402 test upstream, and GET /images/<name>."""

from __future__ import annotations

import asyncio

import pytest

from tests.images.conftest import CATALOG, RESULT, image_handler
from tests.images.test_models import SHORTHANDS
from tests.support.handlers import PNG_1X1, status
from tests.support.x402_upstream import IMAGE_PATH


async def post(env, body, path="/v1/images/generations"):
    resp = await env.client.post(path, json=body)
    return resp.status, await resp.json()


async def fetch(env, url):
    """GET a returned local URL from the app (it is http://localhost:<test port>/images/...)."""
    assert url.startswith(env.public["url"] + "/images/")
    resp = await env.client.get(url[len(env.public["url"]):])
    return resp.status, resp.headers.get("Content-Type"), await resp.read()


@pytest.mark.parametrize("shorthand", sorted(SHORTHANDS))
async def test_each_shorthand_generates_pays_once_and_stores(image_env, shorthand):
    env = image_env
    model = CATALOG.images[SHORTHANDS[shorthand]]
    code, body = await post(env, {"model": shorthand, "prompt": "a lighthouse at dawn"})
    assert code == 200, body
    assert body["created"] == 1741460000 and len(body["data"]) == 1
    item = body["data"][0]
    assert item["revised_prompt"] == "revised: a lighthouse at dawn" and "note" not in item
    assert await fetch(env, item["url"]) == (200, "image/png", RESULT)
    [sent] = env.image_requests()
    assert sent.json() == {"model": model.id, "prompt": "a lighthouse at dawn",
                           "size": "1024x1024", "n": 1}
    assert env.upstream.count(path=IMAGE_PATH, paid=True) == 1
    assert len(env.upstream.ledger.settlements) == 1
    assert env.paid_usd() == pytest.approx(model.price("1024x1024"))
    [record] = env.usage_records()
    assert record["kind"] == "image" and record["tier"] == "IMAGE"
    assert record["model"] == model.id and record["requestedModel"] == shorthand
    assert record["cost"] == pytest.approx(model.price("1024x1024"))


async def test_default_model_and_size_dependent_price(image_env):
    env = image_env
    code, _ = await post(env, {"prompt": "a fox"})
    assert code == 200
    assert env.image_requests()[-1].json()["model"] == "google/nano-banana"
    code, _ = await post(env, {"model": "gpt-image", "prompt": "a fox", "size": "1536x1024"})
    assert code == 200
    assert env.paid_usd() == pytest.approx(0.05 + 0.04)


async def test_n_images_is_one_payment_of_n_times_the_price(image_env):
    env = image_env
    code, body = await post(env, {"model": "flux", "prompt": "tiles", "n": 3})
    assert code == 200 and len(body["data"]) == 3
    assert len({item["url"] for item in body["data"]}) == 3
    assert len(env.upstream.ledger.settlements) == 1
    assert env.paid_usd() == pytest.approx(0.12)


@pytest.mark.parametrize(("body", "status_code", "message"), [
    ({"model": "nano-banana", "prompt": "x", "size": "2048x2048"}, 400,
     "larger than google/nano-banana's maximum 1024x1024"),
    ({"model": "dall-e-3", "prompt": "x", "size": "1792x1792"}, 400,
     "openai/dall-e-3's maximum 1792x1024"),
    ({"model": "midjourney", "prompt": "x"}, 400,
     "unknown image model 'midjourney'; use one of: nano-banana, banana-pro"),
    ({"prompt": "   "}, 400, "prompt is required"),
    ({"model": "flux"}, 400, "prompt is required"),
    ({"prompt": "x", "size": "huge"}, 400, "malformed size 'huge'"),
    ({"prompt": "x", "n": 5}, 400, "n must be a whole number from 1 to 4"),
    ({"prompt": "x", "n": "2"}, 400, "n must be a whole number"),
    ({"prompt": ["x"]}, 400, "prompt is required"),
])
async def test_invalid_requests_are_refused_before_paying(image_env, body, status_code, message):
    code, reply = await post(image_env, body)
    assert code == status_code and message in reply["error"]["message"], reply
    assert reply["error"]["type"] == "invalid_request_error"
    image_env.assert_nothing_sent()


async def test_malformed_json_body(image_env):
    resp = await image_env.client.post("/v1/images/generations", data=b"{nope",
                                       headers={"Content-Type": "application/json"})
    assert resp.status == 400 and "malformed JSON" in (await resp.json())["error"]["message"]
    image_env.assert_nothing_sent()


async def test_a_402_asking_more_than_the_catalog_price_is_not_signed(image_env):
    env = image_env
    env.upstream.set_price(IMAGE_PATH, "0.50")  # nano-banana costs $0.05
    code, reply = await post(env, {"prompt": "a fox"})
    assert code == 402 and reply["error"]["code"] == "payment_refused"
    assert "nothing was signed" in reply["error"]["message"]
    assert env.upstream.count(path=IMAGE_PATH, paid=True) == 0
    assert env.upstream.ledger.settlements == [] and env.usage_records() == []


async def test_upstream_error_is_reported_and_not_paid(image_env):
    env = image_env
    env.upstream.set_handler(IMAGE_PATH, status(500))
    code, reply = await post(env, {"prompt": "a fox"})
    assert code == 502 and "upstream answered 500" in reply["error"]["message"]
    assert env.upstream.ledger.settlements == []
    env.upstream.set_handler(IMAGE_PATH, status(400, {"error": {"message": "content policy"}}))
    code, reply = await post(env, {"prompt": "a fox"})
    assert code == 400 and "content policy" in reply["error"]["message"]


@pytest.mark.parametrize("mode", ["b64", "url"])
async def test_b64_json_and_url_answers_are_stored_locally(image_env, mode):
    env = image_env
    env.upstream.set_handler(IMAGE_PATH, image_handler(mode, revised=False))
    code, body = await post(env, {"prompt": "a fox", "n": 2})
    assert code == 200
    expected = PNG_1X1 if mode == "url" else RESULT
    for item in body["data"]:
        assert item.keys() == {"url"}
        assert await fetch(env, item["url"]) == (200, "image/png", expected)
    assert len(list(env.store.directory.iterdir())) == 2


async def test_undownloadable_upstream_url_is_returned_with_a_note(image_env):
    env = image_env
    env.upstream.set_handler(IMAGE_PATH, image_handler("dead-url"))
    code, body = await post(env, {"prompt": "a fox"})
    assert code == 200  # paid for: never fail it because the copy failed
    item = body["data"][0]
    assert item["url"] == f"{env.upstream.origin}/gone/out-0.png"
    assert "could not fetch the image at that URL" in item["note"]
    assert "upstream's URL" in item["note"]
    assert len(env.upstream.ledger.settlements) == 1


async def test_answer_without_images_is_an_error(image_env):
    env = image_env
    env.upstream.set_handler(IMAGE_PATH, image_handler("empty"))
    code, reply = await post(env, {"prompt": "a fox"})
    assert code == 502 and "returned no images" in reply["error"]["message"]


async def test_concurrent_requests_each_pay_once(image_env):
    env = image_env
    results = await asyncio.gather(*(post(env, {"prompt": f"fox {i}"}) for i in range(6)))
    assert [code for code, _ in results] == [200] * 6
    assert len({body["data"][0]["url"] for _, body in results}) == 6
    assert len(env.upstream.ledger.settlements) == 6
    assert env.paid_usd() == pytest.approx(0.30)
