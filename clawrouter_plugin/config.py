"""Plugin configuration from ``openclaw.yaml``, validated with pydantic.

Two shapes of the ``plugins`` section are accepted: the real OpenClaw host's map
(``plugins: {entries: {blockrun: {config: {...}}}}``) and the older list
(``plugins: [{id: "blockrun", config: {...}}]``). The plugin id is ``blockrun``; the old ids
``clawrouter`` (taken by a plugin bundled with OpenClaw) and ``@blockrun/clawrouter`` are still
read, with a deprecation warning. Keys are camelCase as in OpenClaw; snake_case is accepted
too. Unknown keys are errors, so typos do not pass silently.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, ValidationError, field_validator

from .config_section import ConfigSection
from .errors import ConfigError
from .paths import expand_user, resolve_data_dir
from .router.config import RoutingConfig, TierName
from .router.output_cap import DEFAULT_MAX_OUTPUT_TOKENS, DEFAULT_TIER_OUTPUT_TOKENS, OutputCaps

PLUGIN_ID = "blockrun"
DEPRECATED_PLUGIN_IDS = ("clawrouter", "@blockrun/clawrouter")
PLUGIN_ID_ALIASES = (PLUGIN_ID, *DEPRECATED_PLUGIN_IDS)
DEFAULT_CONFIG_PATH = "~/.openclaw/openclaw.yaml"
DEFAULT_PORT = 8402
DEFAULT_API_BASE = "https://blockrun.ai/api"
BASE_MAINNET = "eip155:8453"
BASE_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
log = logging.getLogger("clawrouter.config")


def port_number(text: str) -> int | None:
    """``text`` as a TCP port, 0 (any free port) to 65535; None when it is not one."""
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        return None
    return int(text)


def api_base_problem(url: str) -> str | None:
    """Why ``url`` cannot be the upstream API base, or None. Never quotes the URL (it may hold
    credentials). Plain http is only for a server on this machine: payments are signed for it."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number in range
    except ValueError:
        port = 0
    if port == 0:
        return "not a valid URL (bad port)"
    if any(char.isspace() for char in url):
        return "must not contain spaces"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "expected an http(s) URL such as https://blockrun.ai/api"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if parts.scheme.lower() == "http" and not _is_local(parts.hostname):
        return "plain http is only allowed for localhost; use https://"
    return None


def _is_local(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class AllowedAsset(ConfigSection):
    """A (network, token) pair payments may use. ``network`` is CAIP-2, e.g. eip155:8453."""

    network: str
    asset: str


class PaymentConfig(ConfigSection):
    """What the wallet may sign. Anything outside these limits is refused before signing."""

    max_per_request_usd: float = Field(1.0, gt=0, le=1000)
    allowed_assets: list[AllowedAsset] = Field(
        default_factory=lambda: [AllowedAsset(network=BASE_MAINNET, asset=BASE_USDC)]
    )
    pay_to: str | None = None
    preauth: bool = True
    rpc_url: str = "https://mainnet.base.org"
    balance_cache_seconds: float = Field(60, ge=0)
    low_balance_usd: float = Field(1.0, ge=0)


class CacheConfig(ConfigSection):
    """The response cache (stored on disk under the data directory)."""

    enabled: bool = True
    ttl_seconds: float = Field(600, gt=0)
    max_size: int = Field(200, ge=1)
    max_item_bytes: int = Field(1_048_576, ge=1)
    # state.backend redis: the cached responses of the whole team take at most this many bytes
    # of Redis memory (oldest out first); the local cache is bounded by maxSize alone
    max_bytes: int = Field(64 * 1024 * 1024, ge=1)


class SessionConfig(ConfigSection):
    """Per-conversation model pinning."""

    enabled: bool = True
    ttl_seconds: float = Field(3600, gt=0)


class UpstreamConfig(ConfigSection):
    """Calls to the BlockRun API: timeouts and fallback attempts."""

    max_attempts: int = Field(5, ge=1, le=10)
    attempt_timeout_seconds: float = Field(60, gt=0)
    request_timeout_seconds: float = Field(180, gt=0)


class ImageConfig(ConfigSection):
    """Image generation and editing inputs."""

    max_input_bytes: int = Field(20 * 1024 * 1024, ge=1)
    download_timeout_seconds: float = Field(20, gt=0)
    max_redirects: int = Field(3, ge=0, le=10)
    max_images: int = Field(4, ge=1, le=10)
    max_output_bytes: int = Field(64 * 1024 * 1024, ge=1)  # one image returned by the upstream
    # image URLs on loopback, private, link-local or CGNAT addresses (never the proxy's own)
    allow_private_urls: bool = False
    # the only folders (and their subfolders) local image inputs are read from; "~" is the
    # home directory. An empty list: no local files at all, only URLs and data URIs
    local_folders: list[str] = Field(default_factory=lambda: ["~"])


OutputTokens = Annotated[int, Field(ge=1, le=1_000_000)]


class ServerConfig(ConfigSection):
    """The local HTTP server: how many connections it keeps, how long a client may take.

    The timeouts apply while the proxy waits for the client, never while it answers: a
    stream that runs for minutes is not cut.
    """

    max_connections: int = Field(256, ge=1, le=100_000)  # more are refused with a 503
    idle_timeout_seconds: float = Field(60, gt=0, le=86_400)  # no request (new or kept alive)
    header_timeout_seconds: float = Field(10, gt=0, le=3_600)  # rest of a started request head
    body_timeout_seconds: float = Field(30, gt=0, le=3_600)  # the body, once the head is in
    # the address the proxy listens on; anything but loopback requires API keys (docs/keys.md)
    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    # ask every request for an API key even on loopback
    require_keys: bool = False

    @field_validator("host")
    @classmethod
    def _listen_host(cls, value: str) -> str:
        """An IP address or a host name, nothing else (no scheme, port or spaces)."""
        if not is_ip_address(value) and not _HOST_NAME.fullmatch(value):
            raise ValueError("expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::) or a host name")
        return value

    @property
    def loopback(self) -> bool:
        """Whether the proxy listens on this machine only (no API keys needed)."""
        return _is_local(self.host)

    @property
    def keys_required(self) -> bool:
        """Whether every request must carry an API key (``requireKeys``, or a non-loopback
        ``host``)."""
        return self.require_keys or not self.loopback


class StateConfig(ConfigSection):
    """Where shared state lives: ``local`` (this process and the data directory, the default)
    or ``redis`` (one Redis shared by every proxy process of a team, see docs/deploy.md)."""

    backend: Literal["local", "redis"] = "local"
    # redis:// or rediss:// (TLS) URL, with a password if the server needs one
    redis_url: str = "redis://127.0.0.1:6379/0"
    # every key this proxy writes starts with it: several teams can share one Redis
    key_prefix: str = Field("clawrouter", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    # one Redis command may take this long before the server counts as unreachable
    timeout_seconds: float = Field(2.0, gt=0, le=60)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        """Only Redis URLs (the message never repeats the URL: it may hold a password)."""
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// (TLS) or unix://")
        return value


class CommandsConfig(ConfigSection):
    """Who may run the chat commands that spend money or read local files."""

    # a message relayed from a chat channel (WhatsApp, Telegram, …) through the chat
    # completions endpoint counts as an authorised sender
    allow_relayed: bool = False
    # such a message may also name local files (images.localFolders still applies); only
    # with allowRelayed
    relayed_local_files: bool = False


class PluginConfig(ConfigSection):
    """Everything under the plugin's ``config`` key (``plugins.entries.blockrun.config``)."""

    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    # the output cap a chat request is sent and priced with, at most (see router/output_cap.py):
    # per tier for routed requests, maxOutputTokens for an explicit model
    max_output_tokens: OutputTokens = DEFAULT_MAX_OUTPUT_TOKENS
    tier_output_tokens: dict[TierName, OutputTokens] = Field(
        default_factory=lambda: dict(DEFAULT_TIER_OUTPUT_TOKENS))
    max_cost_per_run: float | None = Field(None, ge=0)
    max_cost_per_run_mode: Literal["graceful", "strict"] = "graceful"
    exclude_models: list[str] = Field(default_factory=list)
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)  # 0: any free port
    data_dir: str | None = None
    api_base: str = DEFAULT_API_BASE
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    server: ServerConfig = Field(default_factory=ServerConfig)
    payment: PaymentConfig = Field(default_factory=PaymentConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    sessions: SessionConfig = Field(default_factory=SessionConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    images: ImageConfig = Field(default_factory=ImageConfig)
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    state: StateConfig = Field(default_factory=StateConfig)

    # The OpenClaw plugin (openclaw/index.js) runs this command (no shell) to start the proxy
    # when /health does not answer; our Python host starts the proxy itself and ignores it.
    proxy_command: list[str] | None = Field(None, min_length=1)

    @field_validator("tier_output_tokens", mode="before")
    @classmethod
    def _tier_names(cls, value: object) -> object:
        """Tier names in any case; a tier left out keeps its default."""
        if isinstance(value, dict):
            given = {k.upper() if isinstance(k, str) else k: v for k, v in value.items()}
            if any(isinstance(v, bool) for v in given.values()):
                raise ValueError("expected a number of tokens, not true/false")
            return {**DEFAULT_TIER_OUTPUT_TOKENS, **given}
        return value

    def output_caps(self) -> OutputCaps:
        """The output ceilings the router clamps each request's output cap to."""
        return OutputCaps(self.max_output_tokens, dict(self.tier_output_tokens))

    @field_validator("api_base")
    @classmethod
    def _valid_api_base(cls, value: str) -> str:
        problem = api_base_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def data_path(self) -> Path:
        """The data directory as a path (``dataDir``, else $CLAWROUTER_HOME, else default)."""
        return resolve_data_dir(self.data_dir)


@dataclass
class LoadedConfig:
    """The validated plugin config plus the whole file it came from."""

    plugin: PluginConfig
    whole: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def config_path(explicit: str | None = None) -> Path:
    """``explicit``, else $OPENCLAW_CONFIG, else ~/.openclaw/openclaw.yaml."""
    return expand_user(explicit or os.environ.get("OPENCLAW_CONFIG") or DEFAULT_CONFIG_PATH,
                       "config file")


def plugin_section(whole: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Find the plugin's ``config`` mapping in either plugins shape; returns (config, key path).

    The ``blockrun`` entry wins; an entry under a deprecated id is read with a warning."""
    plugins = whole.get("plugins")
    if plugins is None:
        return {}, "plugins"
    if isinstance(plugins, list):
        ids = [entry.get("id") if isinstance(entry, dict) else None for entry in plugins]
        for plugin_id in PLUGIN_ID_ALIASES:
            if plugin_id in ids:
                index = ids.index(plugin_id)
                _warn_deprecated(plugin_id, f"plugins[{index}].id")
                where = f"plugins[{index}].config"
                return _mapping(plugins[index].get("config"), where), where
        return {}, "plugins"
    if isinstance(plugins, dict):
        entries = plugins.get("entries") or {}
        if not isinstance(entries, dict):
            raise ConfigError("plugins.entries: must be a mapping of plugin id to settings")
        for plugin_id in PLUGIN_ID_ALIASES:
            if plugin_id in entries:
                entry = entries[plugin_id] or {}
                where = f"plugins.entries.{plugin_id}"
                if not isinstance(entry, dict):
                    raise ConfigError(f"{where}: must be a mapping")
                _warn_deprecated(plugin_id, where)
                return _mapping(entry.get("config"), f"{where}.config"), f"{where}.config"
        return {}, "plugins.entries"
    raise ConfigError("plugins: must be a list of {id, config} or a mapping with 'entries'")


def _warn_deprecated(plugin_id: str, where: str) -> None:
    if plugin_id in DEPRECATED_PLUGIN_IDS:
        log.warning("%s: the plugin id %r is deprecated (OpenClaw bundles another plugin "
                    "called clawrouter); use %r instead", where, plugin_id, PLUGIN_ID)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def validate_plugin_config(raw: dict[str, Any], where: str = "config") -> PluginConfig:
    """Validate a plugin config mapping; errors name the offending key and the problem."""
    try:
        return PluginConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            problems.append(f"{where}.{key}: {err['msg']}" if key else f"{where}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def load_config(explicit_path: str | None = None) -> LoadedConfig:
    """Load and validate the config file; a missing file gives the defaults."""
    path = config_path(explicit_path)
    if not path.exists():
        if explicit_path:
            raise ConfigError(f"config file not found: {path}")
        return LoadedConfig(plugin=PluginConfig(), whole={}, path=None)
    try:
        whole = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except (ValueError, RecursionError) as exc:  # a number too long to convert, deep nesting
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(whole, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    raw, where = plugin_section(whole)
    plugin = validate_plugin_config(raw, f"{path.name}: {where}")
    return LoadedConfig(plugin=plugin, whole=whole, path=path)


def with_overrides(
    plugin: PluginConfig,
    *,
    port: int | None = None,
    api_base: str | None = None,
    data_dir: str | None = None,
    host: str | None = None,
) -> PluginConfig:
    """Apply command-line values, then environment ($BLOCKRUN_PROXY_PORT, $CLAWROUTER_HOME)."""
    updates: dict[str, Any] = {}
    if host is not None:
        try:
            server = ServerConfig.model_validate({**plugin.server.model_dump(), "host": host})
        except ValidationError:
            raise ConfigError(f"--host: not an IP address or host name: {host!r}") from None
        updates["server"] = server
    env_port = os.environ.get("BLOCKRUN_PROXY_PORT")
    if port is not None:
        updates["port"] = port
    elif env_port:
        number = port_number(env_port)
        if number is None:
            raise ConfigError(f"BLOCKRUN_PROXY_PORT: not a port number (0-65535): {env_port!r}")
        updates["port"] = number
    if api_base:
        problem = api_base_problem(api_base)
        if problem:
            raise ConfigError(f"--api-base: {problem}")
        updates["api_base"] = api_base
    if data_dir:
        updates["data_dir"] = data_dir
    elif plugin.data_dir is None and os.environ.get("CLAWROUTER_HOME"):
        updates["data_dir"] = os.environ["CLAWROUTER_HOME"]
    return plugin.model_copy(update=updates) if updates else plugin
