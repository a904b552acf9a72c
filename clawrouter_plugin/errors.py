"""Typed errors. Each carries the HTTP status and OpenAI-style error type it maps to.

The proxy turns any :class:`ClawRouterError` into ``{"error": {"message", "type", "code"}}``
in one place; chat commands show ``message``. Messages never contain secrets.
"""

from __future__ import annotations

import time


class ClawRouterError(Exception):
    """Base class: a failure the user can understand and act on."""

    status: int = 500
    type: str = "clawrouter_error"
    code: str | None = None
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        """OpenAI-style error body."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}

    @classmethod
    def from_dict(cls, body: dict, status: int) -> ClawRouterError:
        """The error another process reported with :meth:`to_dict` (same message, type, code
        and status), e.g. for identical requests that shared its work."""
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        made = cls(str(error.get("message") or "an identical request failed"),
                   code=error.get("code") if isinstance(error.get("code"), str) else None,
                   status=status if isinstance(status, int) and 400 <= status <= 599 else 502)
        if isinstance(error.get("type"), str):
            made.type = error["type"]
        return made


class ConfigError(ClawRouterError):
    """The configuration file is missing pieces or has invalid values."""

    status = 500
    type = "config_error"
    code = "invalid_config"


class BadRequest(ClawRouterError):
    """The request is malformed or asks for something impossible."""

    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class PayloadTooLarge(BadRequest):
    status = 413
    code = "payload_too_large"


class ModelNotFound(BadRequest):
    status = 404
    code = "model_not_found"


class WalletError(ClawRouterError):
    """The wallet key file is unreadable, corrupt, or an operation on it was refused."""

    status = 500
    type = "wallet_error"
    code = "wallet_error"


class PaymentRefused(ClawRouterError):
    """A 402 asked for a payment our policy does not allow; nothing was signed."""

    status = 402
    type = "payment_refused"
    code = "payment_refused"


class PaymentFailed(ClawRouterError):
    """The upstream rejected or could not settle a payment we made."""

    status = 402
    type = "payment_error"
    code = "payment_failed"


class InsufficientFunds(PaymentFailed):
    code = "insufficient_funds"


class PaymentUnconfirmed(ClawRouterError):
    """The connection failed after a payment was sent: it may have been settled. Not an
    UpstreamError on purpose, so nothing retries it with a second payment."""

    status = 502
    type = "upstream_error"
    code = "payment_unconfirmed"

    def __init__(self, message: str, *, amount_usd: float, status: int | None = None):
        super().__init__(message, status=status)
        self.amount_usd = amount_usd


class ShuttingDown(ClawRouterError):
    """The proxy is stopping: the request came too late, or did not finish in the grace
    period."""

    status = 503
    type = "service_unavailable"
    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__("clawrouter is shutting down; send the request again once it is back")


class BudgetExceeded(ClawRouterError):
    """The session's maxCostPerRun budget does not allow this request."""

    status = 429
    type = "cost_cap_exceeded"
    code = "cost_cap_exceeded"


class StateUnavailable(ClawRouterError):
    """Team mode: the shared state (Redis) cannot be reached, so budgets cannot be checked or a
    payment cannot be coordinated with the other processes; nothing was signed."""

    status = 503
    type = "service_unavailable"
    code = "state_unavailable"
    retry_after = 2


class IdenticalRequestPending(ClawRouterError):
    """An identical request was being answered by another process that stopped after signing
    its payment; that payment may still settle until ``valid_before`` (Unix time), so this
    request is not paid again before then."""

    status = 503
    type = "service_unavailable"
    code = "identical_request_pending"

    def __init__(self, valid_before: int, now: float, margin: int = 0) -> None:
        wait = max(1, int(valid_before + margin - now) + 1)
        until = time.strftime("%H:%M:%S", time.gmtime(valid_before))
        super().__init__(
            "an identical request was being answered by another clawrouter process that "
            "stopped after signing its payment; that payment may still settle until "
            f"{until} UTC, so this request was not paid a second time. Send it again after "
            f"that (in {wait} s), or send it with 'Cache-Control: no-cache' to pay for a "
            "fresh answer now")
        self.valid_before = valid_before
        self.retry_after = wait


class UpstreamError(ClawRouterError):
    """The upstream API answered with an error or could not be reached."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""

    status = 504
    code = "upstream_timeout"


class Unauthorized(ClawRouterError):
    """A shared proxy's request without a valid API key (missing, unknown or revoked)."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class KeysUnavailable(ClawRouterError):
    """The API keys cannot be checked right now (their store, e.g. Redis, is unreachable):
    nothing is served, nothing is paid."""

    status = 503
    type = "service_unavailable"
    code = "keys_unavailable"
