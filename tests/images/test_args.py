"""Chat command argument parsing: flags anywhere, quoted paths, prompts kept verbatim."""

from __future__ import annotations

import pytest

from clawrouter_plugin.errors import BadRequest
from clawrouter_plugin.images.args import parse_command_args

EDIT = ("image", "mask", "model", "size")
GEN = ("model", "size")


def test_seed_examples():
    parsed = parse_command_args("--model banana-pro --size 2048x2048 mountain landscape", GEN)
    assert parsed.options == {"model": "banana-pro", "size": "2048x2048"}
    assert parsed.prompt == "mountain landscape" and not parsed.help
    parsed = parse_command_args("--image ~/photo.png 把背景换成星空", EDIT)
    assert parsed.options == {"image": "~/photo.png"} and parsed.prompt == "把背景换成星空"
    parsed = parse_command_args("--image ./cat.jpg --mask ./mask.png remove the background", EDIT)
    assert parsed.options == {"image": "./cat.jpg", "mask": "./mask.png"}
    assert parsed.prompt == "remove the background"


def test_prompt_text_is_kept_verbatim():
    text = """don't make it "too" dark --size 512x512 — it's a café's sign;  keep  spacing"""
    parsed = parse_command_args(text, GEN)
    assert parsed.options == {"size": "512x512"}
    assert parsed.prompt == """don't make it "too" dark — it's a café's sign;  keep  spacing"""
    assert parse_command_args("a cat\nwith two lines", GEN).prompt == "a cat\nwith two lines"


@pytest.mark.parametrize("text", [
    '--image "/tmp/My Photos/cat one.png" add a hat',
    "--image '/tmp/My Photos/cat one.png' add a hat",
    "--image /tmp/My\\ Photos/cat\\ one.png add a hat",
    "--image “/tmp/My Photos/cat one.png” add a hat",
    '--image="/tmp/My Photos/cat one.png" add a hat',
    'add a hat —image "/tmp/My Photos/cat one.png"',
])
def test_quoted_paths_with_spaces(text):
    parsed = parse_command_args(text, EDIT)
    assert parsed.options == {"image": "/tmp/My Photos/cat one.png"}
    assert parsed.prompt == "add a hat"


def test_help_flag():
    assert parse_command_args("--help", GEN).help
    assert parse_command_args("-h", GEN).help
    assert parse_command_args("", GEN) == parse_command_args(None, GEN)


@pytest.mark.parametrize(("text", "message"), [
    ("--sizes 512x512 a cat", "unknown option --sizes"),
    ("--model", "--model needs a value"),
    ("--model --size 512x512 a cat", "--model needs a value"),
    ("--size= a cat", "--size needs a value"),
    ("--model flux --model dall-e-3 a cat", "given twice"),
    ('--image "/tmp/unclosed a cat', "unclosed quote"),
])
def test_errors(text, message):
    with pytest.raises(BadRequest, match=message):
        parse_command_args(text, EDIT)


def test_dashes_in_prose_are_prompt_text():
    parsed = parse_command_args("a cat —beautiful— on a mat - really", GEN)
    assert parsed.prompt == "a cat —beautiful— on a mat - really" and parsed.options == {}
