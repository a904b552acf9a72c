"""The model catalog: chat and image models, prices, limits, capabilities and aliases.

Loaded once from ``data/models.yaml``; every lookup afterwards is a dict access.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

BLOCKRUN_PREFIX = "blockrun/"
# libyaml's loader when PyYAML was built with it (about 10x faster on the packaged data files)
FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CAPABILITIES = ("tools", "vision", "reasoning", "agentic", "json", "json_schema")


@dataclass(frozen=True, slots=True)
class ChatModel:
    """One chat model with prices in USD per million tokens."""

    id: str
    input_price: float
    output_price: float
    context_window: int
    max_output: int
    tools: bool = False
    vision: bool = False
    reasoning: bool = False
    agentic: bool = False
    json: bool = False  # honours response_format json_object
    json_schema: bool = False  # honours response_format json_schema too

    @property
    def is_free(self) -> bool:
        return self.input_price == 0 and self.output_price == 0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD cost of a call with the given token counts."""
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1_000_000

    def honours(self, response_format: str) -> bool:
        """Whether this model honours a response_format of this type ("" when none is asked)."""
        if response_format == "json_schema":
            return self.json_schema
        return self.json or response_format != "json_object"

    def output_limit(self, cap: int) -> int:
        """The output cap this model is sent: ``cap``, at most the model's max output."""
        return cap if cap < self.max_output else self.max_output

    def charge(self, input_tokens: int, output_cap: int) -> float:
        """USD the upstream asks up front for a call: the input and the whole output cap
        (x402 is paid before the answer, so the cap is priced, not the tokens used)."""
        return self.cost(input_tokens, self.output_limit(output_cap))


@dataclass(frozen=True, slots=True)
class ImageModel:
    """One image model: price per image (by size) and the largest size it produces."""

    id: str
    prices: dict[str, float]
    max_width: int
    max_height: int
    can_edit: bool

    @property
    def max_size(self) -> str:
        return f"{self.max_width}x{self.max_height}"

    def price(self, size: str) -> float:
        """USD per image at ``size`` ("WxH")."""
        return self.prices.get(size, self.prices["default"])

    def fits(self, width: int, height: int) -> bool:
        """Whether ``width`` x ``height`` is within this model's limit (either orientation)."""
        long_side, short_side = max(width, height), min(width, height)
        return long_side <= max(self.max_width, self.max_height) and short_side <= min(
            self.max_width, self.max_height
        )


@dataclass(frozen=True)
class Catalog:
    """Everything the router, proxy and commands need to know about models."""

    chat: dict[str, ChatModel]
    images: dict[str, ImageModel]
    aliases: dict[str, str]
    image_aliases: dict[str, str]
    profiles: dict[str, str]
    free_model: str
    baseline_model: str
    default_image_model: str
    default_edit_model: str

    def resolve(self, name: str) -> str:
        """Resolve a user-supplied model name to a profile name or a catalog id.

        Case and surrounding blanks are ignored, a ``blockrun/`` prefix is dropped, aliases
        are followed, and ``openai/<profile>`` means the profile. Unknown names come back
        normalised but otherwise unchanged, so callers can report them.
        """
        key = name.strip().lower()
        if key.startswith(BLOCKRUN_PREFIX):
            key = key[len(BLOCKRUN_PREFIX) :]
        if key in self.profiles or key in self.chat:
            return key
        if key in self.aliases:
            return self.aliases[key]
        if key.startswith("openai/") and key[7:] in self.profiles:
            return key[7:]
        return key

    def is_profile(self, name: str) -> bool:
        return name in self.profiles

    def resolve_image(self, name: str | None, *, edit: bool = False) -> str:
        """Resolve an image model shorthand or id; ``None`` gives the default model."""
        if not name:
            return self.default_edit_model if edit else self.default_image_model
        key = name.strip().lower()
        if key.startswith(BLOCKRUN_PREFIX):
            key = key[len(BLOCKRUN_PREFIX) :]
        return self.image_aliases.get(key, key)

    @property
    def baseline(self) -> ChatModel:
        return self.chat[self.baseline_model]


def _parse_size(size: str) -> tuple[int, int]:
    width, height = size.lower().split("x")
    return int(width), int(height)


def _load(text: str) -> Catalog:
    raw = yaml.load(text, Loader=FAST_SAFE_LOADER)
    chat: dict[str, ChatModel] = {}
    for model_id, row in raw["chat_models"].items():
        flags = set(row[4:])
        unknown = flags - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"catalog: {model_id} has unknown capabilities {sorted(unknown)}")
        if "json_schema" in flags and "json" not in flags:
            raise ValueError(f"catalog: {model_id} has json_schema without json")
        chat[model_id] = ChatModel(
            id=model_id,
            input_price=float(row[0]),
            output_price=float(row[1]),
            context_window=int(row[2]),
            max_output=int(row[3]),
            **{flag: True for flag in flags},
        )
    images = {}
    for model_id, spec in raw["image_models"].items():
        width, height = _parse_size(spec["max_size"])
        images[model_id] = ImageModel(
            id=model_id,
            prices={k: float(v) for k, v in spec["prices"].items()},
            max_width=width,
            max_height=height,
            can_edit=bool(spec.get("edit", False)),
        )
    catalog = Catalog(
        chat=chat,
        images=images,
        aliases={k.lower(): v for k, v in raw["aliases"].items()},
        image_aliases={k.lower(): v for k, v in raw["image_aliases"].items()},
        profiles=dict(raw["profiles"]),
        free_model=raw["free_model"],
        baseline_model=raw["baseline_model"],
        default_image_model=raw["default_image_model"],
        default_edit_model=raw["default_edit_model"],
    )
    _check(catalog)
    return catalog


def _check(catalog: Catalog) -> None:
    """Fail loudly at load time if the data file points at models that do not exist."""
    targets = set(catalog.chat) | set(catalog.profiles)
    for alias, target in catalog.aliases.items():
        if target not in targets:
            raise ValueError(f"catalog: alias {alias!r} points at unknown model {target!r}")
    for alias, target in catalog.image_aliases.items():
        if target not in catalog.images:
            raise ValueError(f"catalog: image alias {alias!r} points at unknown {target!r}")
    for model_id in (catalog.free_model, catalog.baseline_model):
        if model_id not in catalog.chat:
            raise ValueError(f"catalog: {model_id!r} is not a chat model")


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged catalog (parsed once per process)."""
    text = resources.files("clawrouter_plugin").joinpath("data/models.yaml").read_text("utf-8")
    return _load(text)
