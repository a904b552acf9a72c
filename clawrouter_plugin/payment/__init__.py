"""x402 payments: the wallet, the payment policy and the paying HTTP client."""

from .client import X402Client
from .policy import PaymentPolicy
from .response import PaymentRecord, UpstreamResponse
from .wallet import Wallet, export_wallet, load_or_create_wallet, recover_wallet
from .wire import is_insufficient_funds

__all__ = [
    "PaymentPolicy",
    "PaymentRecord",
    "UpstreamResponse",
    "Wallet",
    "X402Client",
    "export_wallet",
    "is_insufficient_funds",
    "load_or_create_wallet",
    "recover_wallet",
]
