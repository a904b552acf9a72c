"""The /imagegen and /img2img chat commands, end to end against the x402 test upstream."""

from __future__ import annotations

import pytest

from clawrouter_plugin.host.api import CommandContext
from commands import imagegen, img2img
from tests.images.conftest import RESULT
from tests.images.imagedata import data_uri, jpeg, png
from tests.support.handlers import status
from tests.support.x402_upstream import IMAGE_EDIT_PATH, IMAGE_PATH


async def test_imagegen_reply_names_url_file_model_size_and_cost(image_env):
    env = image_env
    result = await imagegen.run(env.services, "--model dall-e-3 --size 1792x1024 a city", "s1")
    assert not result.is_error, result.text
    [url] = result.media_urls
    assert url.startswith(env.public["url"] + "/images/")
    name = url.rsplit("/", 1)[1]
    path = env.store.directory / name
    assert path.read_bytes() == RESULT
    assert url in result.text and f"saved to {path}" in result.text
    assert "revised prompt: revised: a city" in result.text
    assert "Model: openai/dall-e-3 | Size: 1792x1024 | Cost: $0.04" in result.text
    [sent] = env.image_requests(IMAGE_PATH)
    assert sent.json() == {"model": "openai/dall-e-3", "prompt": "a city", "size": "1792x1024",
                           "n": 1}
    assert env.usage_records()[0]["session"] == "s1"


async def test_command_spec_handler(image_env):
    spec = imagegen.command(image_env.services)
    assert spec.name == "imagegen" and spec.accepts_args and spec.usage == imagegen.USAGE
    result = await spec.handler(CommandContext(args="a red kite", command_body="/imagegen a red kite",
                                               session_id="abc"))
    assert "Model: google/nano-banana | Size: 1024x1024 | Cost: $0.05" in result.text
    assert img2img.command(image_env.services).name == "img2img"


@pytest.mark.parametrize(("module", "args", "is_error"), [
    (imagegen, "", False), (imagegen, "--help", False), (imagegen, "--size 512x512", True),
    (img2img, "", False), (img2img, "-h", False), (img2img, "add a hat", True),
    (img2img, "--image ~/photo.png", True),
])
async def test_usage_text(image_env, module, args, is_error):
    result = await module.run(image_env.services, args, "s")
    assert result.text == module.USAGE and result.is_error == is_error
    image_env.assert_nothing_sent()


def test_usage_texts_follow_the_seed():
    assert imagegen.USAGE.startswith("Usage: /imagegen <prompt>\n")
    for line in ("nano-banana", "banana-pro", "dall-e-3", "gpt-image", "flux",
                 "/imagegen --model banana-pro --size 2048x2048 mountain landscape"):
        assert line in imagegen.USAGE
    assert img2img.USAGE.startswith("Usage: /img2img --image <path> <prompt>\n\nOptions:\n"
                                    "  --image <path>   Source image path (required)\n"
                                    "  --mask <path>    Mask image path (optional, white = edit "
                                    "area)\n  --model <model>  Model (default: gpt-image)\n"
                                    "  --size <WxH>     Output size (default: 1024x1024)\n")
    assert "/img2img --image ~/photo.png 把背景换成星空" in img2img.USAGE


async def test_img2img_relative_quoted_path_mask_and_chinese_prompt(image_env, tmp_path,
                                                                    monkeypatch):
    env = image_env
    folder = tmp_path / "My Photos"
    folder.mkdir()
    (folder / "cat one.jpg").write_bytes(jpeg())
    (folder / "mask.png").write_bytes(png())
    monkeypatch.chdir(tmp_path)
    result = await img2img.run(
        env.services, '--image "./My Photos/cat one.jpg" --mask "My Photos/mask.png" 把背景换成星空',
        "s2")
    assert not result.is_error, result.text
    [sent] = env.image_requests(IMAGE_EDIT_PATH)
    assert sent.json() == {"model": "openai/gpt-image-1", "prompt": "把背景换成星空",
                           "image": data_uri(jpeg(), "image/jpeg"), "mask": data_uri(png()),
                           "size": "1024x1024", "n": 1}
    assert "Model: openai/gpt-image-1 | Size: 1024x1024 | Cost: $0.02" in result.text


async def test_prompt_with_apostrophes_and_quotes(image_env):
    result = await imagegen.run(image_env.services, """don't draw "text" --model flux""", "s")
    assert not result.is_error, result.text
    assert image_env.image_requests()[0].json()["prompt"] == """don't draw "text\""""


async def test_readable_errors(image_env, tmp_path, monkeypatch):
    env = image_env
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("hello")
    (tmp_path / "good.png").write_bytes(png())
    big = tmp_path / "big.png"
    with open(big, "wb") as handle:
        handle.write(png())
        handle.truncate(300 * 1024)
    cases = [
        (img2img, "--image missing.png add a hat", "Image editing failed: image: file not found: "
         + str(tmp_path / "missing.png")),
        (img2img, "--image notes.png add a hat", "is not a PNG, JPEG or WebP image"),
        (img2img, "--image big.png add a hat", "larger than the 256 KB limit"),
        (img2img, "--image good.png --mask notes.png add a hat", "failed: mask: "),
        (imagegen, "--size 4096x4096 a cat", "Image generation failed: size 4096x4096 is larger "
         "than google/nano-banana's maximum 1024x1024"),
        (imagegen, "--model sdxl a cat", "unknown image model 'sdxl'; use one of: nano-banana, "
         "banana-pro, dall-e-3, gpt-image, flux"),
        (img2img, "--image good.png --model flux add a hat", "cannot edit images"),
        (imagegen, "--modle flux a cat", "unknown option --modle"),
    ]
    for module, args, expected in cases:
        result = await module.run(env.services, args, "s")
        assert result.is_error and expected in result.text, (args, result.text)
        assert "Traceback" not in result.text
    env.assert_nothing_sent()


async def test_payment_and_upstream_failures(image_env):
    env = image_env
    env.upstream.set_price(IMAGE_PATH, "0.75")
    result = await imagegen.run(env.services, "a cat", "s")
    assert result.is_error and result.text.startswith("Image generation failed: payment refused")
    assert "Nothing was paid." in result.text
    env.upstream.set_price(IMAGE_PATH, "0.05")
    env.upstream.ledger.set_balance(env.payer, 0)
    result = await imagegen.run(env.services, "a cat", "s")
    assert result.is_error and "/wallet" in result.text, result.text
    env.upstream.ledger.fund(env.payer, 1)
    env.upstream.set_handler(IMAGE_PATH, status(503))
    result = await imagegen.run(env.services, "a cat", "s")
    assert result.is_error and "upstream answered 503" in result.text
    assert env.upstream.ledger.settlements == []
