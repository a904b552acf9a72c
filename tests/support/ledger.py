"""An in-memory USDC ledger standing in for the chain under the official x402 SDK facilitator.

:class:`LedgerSigner` implements the SDK's ``FacilitatorEvmSigner`` protocol: the SDK's
``ExactEvmScheme`` facilitator does all protocol checks (requirements matching, amount, payTo,
time window, EIP-712 signature recovery) and then "calls the token contract" through this
signer, which behaves like EIP-3009 USDC: balances, one-use nonces, signature re-check at
settlement, ``Transfer`` event in the receipt.
"""

from __future__ import annotations

import contextvars
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_keys import keys
from eth_utils import to_checksum_address
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.exact.eip3009_utils import ERC20_TRANSFER_EVENT_TOPIC
from x402.mechanisms.evm.types import ExactEIP3009Authorization, TransactionReceipt

USDC_DECIMALS = 6

# The request path being served, so a settlement can say what it paid for.
current_path: contextvars.ContextVar[str | None] = contextvars.ContextVar("x402_path", default=None)


class Revert(Exception):
    """An EVM revert; the message mimics FiatTokenV2 so the SDK can classify it."""

    def __init__(self, reason: str):
        super().__init__(f"execution reverted: {reason}")


@dataclass(frozen=True)
class Settlement:
    """One transferWithAuthorization executed on the ledger."""

    payer: str
    pay_to: str
    amount: int  # atomic units (6 decimals)
    asset: str
    nonce: str
    transaction: str
    path: str | None
    at: float

    @property
    def usd(self) -> float:
        return self.amount / 10**USDC_DECIMALS


@dataclass
class Ledger:
    """Balances per payer, used nonces and the list of settlements (all in atomic units)."""

    token_name: str = "USD Coin"
    token_version: str = "2"
    balances: dict[str, int] = field(default_factory=dict)
    used_nonces: set[tuple[str, str]] = field(default_factory=set)
    settlements: list[Settlement] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fund(self, address: str, usd: float) -> None:
        """Add ``usd`` dollars of USDC to ``address``."""
        key = to_checksum_address(address)
        with self._lock:
            self.balances[key] = self.balances.get(key, 0) + round(usd * 10**USDC_DECIMALS)

    def set_balance(self, address: str, atomic: int) -> None:
        with self._lock:
            self.balances[to_checksum_address(address)] = atomic

    def balance(self, address: str) -> int:
        return self.balances.get(to_checksum_address(address), 0)

    def total_paid(self, payer: str | None = None) -> int:
        """Atomic units settled from ``payer`` (every payer when None)."""
        return sum(s.amount for s in self.settlements if payer is None or _same(s.payer, payer))

    def total_paid_usd(self, payer: str | None = None) -> float:
        return self.total_paid(payer) / 10**USDC_DECIMALS

    def nonce_used(self, payer: str, nonce: bytes) -> bool:
        return (payer.lower(), "0x" + nonce.hex()) in self.used_nonces

    def transfer_with_authorization(
        self, token: str, chain_id: int, args: tuple, *, execute: bool
    ) -> Settlement | None:
        """What USDC's transferWithAuthorization does; raises :class:`Revert` on failure."""
        payer, to, value, valid_after, valid_before, nonce, v, r, s = args
        now = int(time.time())
        if now <= valid_after:
            raise Revert("FiatTokenV2: authorization is not yet valid")
        if now >= valid_before:
            raise Revert("FiatTokenV2: authorization is expired")
        auth = ExactEIP3009Authorization(
            from_address=payer, to=to, value=str(value), valid_after=str(valid_after),
            valid_before=str(valid_before), nonce="0x" + nonce.hex(),
        )
        digest = hash_eip3009_authorization(
            auth, chain_id, token, self.token_name, self.token_version
        )
        try:
            recid = v - 27 if v >= 27 else v
            signature = keys.Signature(vrs=(recid, int.from_bytes(r, "big"), int.from_bytes(s, "big")))
            signer = signature.recover_public_key_from_msg_hash(digest).to_checksum_address()
        except Exception as exc:  # malformed v/r/s
            raise Revert(f"FiatTokenV2: invalid signature ({exc})") from None
        if not _same(signer, payer):
            raise Revert("FiatTokenV2: invalid signature")
        with self._lock:
            if self.nonce_used(payer, nonce):
                raise Revert("FiatTokenV2: authorization is used or canceled")
            if self.balance(payer) < value:
                raise Revert("ERC20: transfer amount exceeds balance")
            if not execute:
                return None
            self.used_nonces.add((payer.lower(), "0x" + nonce.hex()))
            self.balances[to_checksum_address(payer)] -= value
            dest = to_checksum_address(to)
            self.balances[dest] = self.balances.get(dest, 0) + value
            settlement = Settlement(
                payer=to_checksum_address(payer), pay_to=dest, amount=value,
                asset=to_checksum_address(token), nonce="0x" + nonce.hex(),
                transaction="0x" + secrets.token_hex(32), path=current_path.get(), at=time.time(),
            )
            self.settlements.append(settlement)
            return settlement


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


class LedgerSigner:
    """``FacilitatorEvmSigner`` backed by a :class:`Ledger` instead of an RPC node."""

    def __init__(self, ledger: Ledger, chain_id: int, tokens: set[str]):
        self.ledger = ledger
        self.chain_id = chain_id
        self.tokens = {t.lower() for t in tokens}
        self.address = to_checksum_address("0x" + secrets.token_hex(20))
        self._receipts: dict[str, Settlement] = {}

    def get_addresses(self) -> list[str]:
        return [self.address]

    def get_code(self, address: str) -> bytes:
        return b"\x60\x80\x60\x40" if address.lower() in self.tokens else b""

    def get_chain_id(self) -> int:
        return self.chain_id

    def get_balance(self, address: str, token_address: str) -> int:
        return self.ledger.balance(address)

    def read_contract(self, address: str, abi: Any, function_name: str, *args: Any) -> Any:
        if function_name == "transferWithAuthorization" and len(args) == 9:
            self.ledger.transfer_with_authorization(address, self.chain_id, args, execute=False)
            return None
        if function_name == "balanceOf":
            return self.ledger.balance(args[0])
        if function_name == "authorizationState":
            return self.ledger.nonce_used(args[0], args[1])
        if function_name == "name":
            return self.ledger.token_name
        if function_name == "version":
            return self.ledger.token_version
        raise Revert(f"ledger: unsupported call {function_name}")

    def write_contract(
        self, address: str, abi: Any, function_name: str, *args: Any, data_suffix: str | None = None
    ) -> str:
        if function_name != "transferWithAuthorization" or len(args) != 9:
            raise Revert(f"ledger: unsupported transaction {function_name}")
        settlement = self.ledger.transfer_with_authorization(
            address, self.chain_id, args, execute=True
        )
        assert settlement is not None
        self._receipts[settlement.transaction] = settlement
        return settlement.transaction

    def wait_for_transaction_receipt(self, tx_hash: str) -> TransactionReceipt:
        s = self._receipts[tx_hash]
        log = {
            "address": s.asset,
            "topics": [ERC20_TRANSFER_EVENT_TOPIC, _topic(s.payer), _topic(s.pay_to)],
            "data": "0x" + s.amount.to_bytes(32, "big").hex(),
        }
        return TransactionReceipt(status=1, block_number=len(self.ledger.settlements),
                                  tx_hash=tx_hash, logs=[log])

    def verify_typed_data(self, *args: Any, **kwargs: Any) -> bool:
        raise NotImplementedError("the SDK verifies EOA signatures itself")

    def send_transaction(self, to: str, data: bytes) -> str:
        raise Revert("ledger: raw transactions are not supported")


def _topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")
