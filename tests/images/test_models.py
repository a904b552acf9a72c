"""Validating image requests against the catalog (before anything is paid)."""

from __future__ import annotations

import pytest

from clawrouter_plugin.catalog import load_catalog
from clawrouter_plugin.errors import BadRequest
from clawrouter_plugin.images.models import (
    check_count,
    check_size,
    model_table,
    resolve_model,
    shorthands,
)

SHORTHANDS = {"nano-banana": "google/nano-banana", "banana-pro": "google/nano-banana-pro",
              "dall-e-3": "openai/dall-e-3", "gpt-image": "openai/gpt-image-1",
              "flux": "black-forest/flux-1.1-pro"}


def test_shorthands_and_defaults():
    catalog = load_catalog()
    assert {v: k for k, v in shorthands(catalog).items()} == SHORTHANDS
    for short, full in SHORTHANDS.items():
        assert resolve_model(catalog, short).id == full
        assert resolve_model(catalog, full.upper()).id == full
    assert resolve_model(catalog, None).id == "google/nano-banana"
    assert resolve_model(catalog, "").id == "google/nano-banana"
    assert resolve_model(catalog, None, edit=True).id == "openai/gpt-image-1"


def test_unknown_and_non_editing_models():
    catalog = load_catalog()
    with pytest.raises(BadRequest, match="unknown image model 'midjourney'; use one of: "
                                         "nano-banana, banana-pro, dall-e-3, gpt-image, flux"):
        resolve_model(catalog, "midjourney")
    with pytest.raises(BadRequest, match="cannot edit images; editing models: gpt-image"):
        resolve_model(catalog, "dall-e-3", edit=True)
    with pytest.raises(BadRequest, match="model must be a string"):
        resolve_model(catalog, 3)


def test_sizes():
    catalog = load_catalog()
    dalle = catalog.images["openai/dall-e-3"]
    assert check_size(dalle, None) == "1024x1024"
    assert check_size(dalle, "1792x1024") == "1792x1024"
    assert check_size(dalle, " 1024 X 1792 ") == "1024x1792"
    with pytest.raises(BadRequest, match="larger than openai/dall-e-3's maximum 1792x1024"):
        check_size(dalle, "2048x2048")
    for bad in ("big", "1024", "0x1024", "1024x", "-1x5", "1024x1024x3", 1024, "99999999x1"):
        with pytest.raises(BadRequest, match="malformed size"):
            check_size(dalle, bad)


def test_counts():
    assert check_count(None, 4) == 1 and check_count(4, 4) == 4
    for bad in (0, 5, True, "2", 1.5):
        with pytest.raises(BadRequest, match="from 1 to 4"):
            check_count(bad, 4)


def test_model_table():
    lines = model_table(load_catalog())
    assert len(lines) == 5
    assert "gpt-image" in lines[3] and "$0.02-0.04/image, up to 1536x1024" in lines[3]
    assert lines[0].split() == ["nano-banana", "google/nano-banana", "$0.05/image,", "up", "to",
                                "1024x1024"]
    assert len(model_table(load_catalog(), edit=True)) == 1
