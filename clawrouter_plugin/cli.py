"""The ``clawrouter`` command line. Each subcommand lives in its own module, imported lazily
so that ``clawrouter route`` does not pay for aiohttp and ``serve`` starts fast."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from . import log_output
from .errors import ClawRouterError

MAX_WORKERS = 64  # `serve --workers`: more processes than this is a typo, not a plan
# subcommand -> "module:function"; each function takes the parsed args and returns an exit code
HANDLERS = {
    "serve": "clawrouter_plugin.cli_serve:serve_command",
    "route": "clawrouter_plugin.router.cli:route_command",
    "wallet": "clawrouter_plugin.payment.cli:wallet_command",
    "chat": "clawrouter_plugin.host.chat:chat_command",
    "openclaw-config": "clawrouter_plugin.host.openclaw_setup:openclaw_config_command",
    "keys": "clawrouter_plugin.keys.cli:keys_command",
}


def port_argument(text: str) -> int:
    """argparse type of ``--port``: 0 (any free port) to 65535."""
    from .config import port_number  # imported when used: `--help` stays fast

    number = port_number(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return number


def workers_argument(text: str) -> int:
    """argparse type of ``serve --workers``: 1 to MAX_WORKERS processes."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"not a number of workers (1-{MAX_WORKERS}): {text!r}")
    return int(text)


def usd_argument(text: str) -> float:
    """argparse type of a budget: a number of USD, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not an amount of USD: {text!r}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="openclaw.yaml path (default: $OPENCLAW_CONFIG, "
                        "else ~/.openclaw/openclaw.yaml)")
    parser.add_argument("--data-dir", help="data directory (default: $CLAWROUTER_HOME, "
                        "else ~/.openclaw/blockrun)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="clawrouter", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the local OpenAI-compatible proxy")
    _add_common(serve)
    serve.add_argument("--port", type=port_argument, help="port to listen on (default 8402 or "
                       "$BLOCKRUN_PROXY_PORT)")
    serve.add_argument("--host", help="address to listen on (default server.host, 127.0.0.1); "
                       "anything but loopback requires API keys (see `clawrouter keys`)")
    serve.add_argument("--api-base", help="upstream API (default https://blockrun.ai/api)")
    serve.add_argument("--workers", type=workers_argument, default=1,
                       help="proxy processes answering on the port (default 1; more than one "
                       "needs state.backend: redis, see docs/deploy.md)")
    serve.add_argument("--worker-fds", help=argparse.SUPPRESS)  # set by the --workers parent

    route = sub.add_parser("route", help="show how a prompt would be routed (no network)")
    _add_common(route)
    route.add_argument("prompt", nargs="?", help="the prompt to route")
    route.add_argument("--profile", action="append", help="auto, eco, premium, free or "
                       "agentic (repeatable; default auto)")
    route.add_argument("--system", help="system prompt")
    route.add_argument("--jsonl", metavar="FILE", help="route one JSON request per line "
                       "({\"id\", \"body\"}); - reads stdin")
    route.add_argument("--explain", action="store_true", help="also show the features that "
                       "weighed most, with their weights, and each signal on its own line "
                       "(with --jsonl: adds a contributions field)")

    wallet = sub.add_parser("wallet", help="show, export or recover the payment wallet")
    _add_common(wallet)
    wallet.add_argument("action", nargs="?", default="status",
                        choices=["status", "export", "recover"])
    wallet.add_argument("mnemonic", nargs="?", help="recovery phrase for 'recover'")
    wallet.add_argument("--force", action="store_true",
                        help="let 'recover' replace a different existing wallet")

    chat = sub.add_parser("chat", help="terminal chat through the plugin host")
    _add_common(chat)
    chat.add_argument("--api-base", help="upstream API (default https://blockrun.ai/api)")
    chat.add_argument("--model", default="blockrun/auto", help="starting model or profile")
    chat.add_argument("--port", type=port_argument, help="run the in-process proxy on this port (default: "
                      "a free port; a clawrouter already on the port is reused)")

    keys = sub.add_parser("keys", help="API keys for a shared proxy: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_action", required=True)
    create = keys_sub.add_parser("create", help="create a key (its secret is shown once)")
    _add_common(create)
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--daily", type=usd_argument, metavar="USD",
                        help="most the key may spend per UTC day")
    create.add_argument("--per-run", type=usd_argument, metavar="USD",
                        help="most the key may spend per run (conversation)")
    listing = keys_sub.add_parser("list", help="every key, without secrets")
    _add_common(listing)
    revoke = keys_sub.add_parser("revoke", help="stop a key from working, on every process")
    _add_common(revoke)
    revoke.add_argument("id", help="the key's id (see `clawrouter keys list`)")

    oc = sub.add_parser("openclaw-config", help="print or write the OpenClaw provider block")
    _add_common(oc)
    oc.add_argument("--port", type=port_argument, help="proxy port to point OpenClaw at")
    oc.add_argument("--write", action="store_true", help="merge into ~/.openclaw/openclaw.json")
    oc.add_argument("--file", help="OpenClaw JSON config to merge into (with --write)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clawrouter`` console script."""
    if sys.stdout is None:  # started with stdout closed: keep fd 1 taken, output goes nowhere
        sys.stdout = open(os.devnull, "w")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # `serve --workers` starts its children with the same arguments
    log_handler = log_output.configure(args.verbose)
    module_name, func_name = HANDLERS[args.command].split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        code = int(handler(args) or 0)
        sys.stdout.flush()
        return code
    except ClawRouterError as exc:
        print(f"clawrouter: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `clawrouter route --jsonl big.jsonl | head`
        _drop_stdout()
        return 1
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EIO) or exc.filename is not None:
            raise
        _drop_stdout()  # a full disk or a dead terminal behind stdout
        print(f"clawrouter: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        log_handler.flush()


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the unwritable rest is not flushed again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to redirect
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
