"""Checking an image request against the catalog before anything is paid: model, size, count."""

from __future__ import annotations

import re

from ..catalog import Catalog, ImageModel
from ..errors import BadRequest

DEFAULT_SIZE = "1024x1024"
_SIZE = re.compile(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*")


def shorthands(catalog: Catalog) -> dict[str, str]:
    """model id -> its first (documented) shorthand, in catalog order."""
    short: dict[str, str] = {}
    for alias, model_id in catalog.image_aliases.items():
        short.setdefault(model_id, alias)
    return {model_id: short.get(model_id, model_id) for model_id in catalog.images}


def resolve_model(catalog: Catalog, name: object, *, edit: bool = False) -> ImageModel:
    """The catalog model ``name`` means (shorthand or id; empty = the default)."""
    if name is not None and not isinstance(name, str):
        raise BadRequest("model must be a string", code="invalid_model")
    model_id = catalog.resolve_image(name, edit=edit)
    model = catalog.images.get(model_id)
    if model is None:
        names = ", ".join(shorthands(catalog).values())
        raise BadRequest(f"unknown image model {name!r}; use one of: {names} "
                         f"(or a full id such as {catalog.default_image_model})",
                         code="model_not_found")
    if edit and not model.can_edit:
        editors = ", ".join(f"{shorthands(catalog)[m.id]} ({m.id})"
                            for m in catalog.images.values() if m.can_edit)
        raise BadRequest(f"{model.id} cannot edit images; editing models: {editors}",
                         code="model_cannot_edit")
    return model


def parse_size(size: object) -> tuple[int, int]:
    """(width, height) of a ``"WxH"`` size; malformed sizes are a :class:`BadRequest`."""
    match = _SIZE.fullmatch(size) if isinstance(size, str) else None
    if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise BadRequest(f"malformed size {size!r}: expected WIDTHxHEIGHT, e.g. 1024x1024",
                         code="invalid_size")
    return int(match.group(1)), int(match.group(2))


def check_size(model: ImageModel, size: object) -> str:
    """The normalised size (``"WxH"``) if ``model`` can produce it; else a BadRequest."""
    width, height = parse_size(DEFAULT_SIZE if size is None else size)
    if not model.fits(width, height):
        raise BadRequest(f"size {width}x{height} is larger than {model.id}'s maximum "
                         f"{model.max_size} (either orientation)", code="size_too_large")
    return f"{width}x{height}"


def check_count(n: object, max_images: int) -> int:
    """The number of images asked for, from 1 to ``max_images`` (images.maxImages)."""
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_images:
        raise BadRequest(f"n must be a whole number from 1 to {max_images} (images.maxImages)",
                         code="invalid_n")
    return n


def price_range(model: ImageModel) -> str:
    """'$0.05' or '$0.02-0.04' per image."""
    low, high = min(model.prices.values()), max(model.prices.values())
    return f"${low:.2f}" if low == high else f"${low:.2f}-{high:.2f}"


def model_table(catalog: Catalog, *, edit: bool = False) -> list[str]:
    """One line per (editing) model: shorthand, id, price, maximum size."""
    short = shorthands(catalog)
    models = [m for m in catalog.images.values() if m.can_edit or not edit]
    width = max(len(short[m.id]) for m in models)
    id_width = max(len(m.id) for m in models)
    return [f"  {short[m.id]:<{width}}  {m.id:<{id_width}}  {price_range(m)}/image, "
            f"up to {m.max_size}" for m in models]
