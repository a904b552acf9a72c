"""The payments one request signed, so each ends up in exactly one usage record.

The paying client adds every payment to the request's tab as it signs it (status
``unconfirmed`` until the answer says more) and updates it when the answer arrives. The
caller then writes the usage records: the answer's own record carries the payment that
bought it (:meth:`PaymentTab.take`), and every other payment of the tab gets a record of its
own (:meth:`PaymentTab.rest`). The tab also says what the request has spent so far, which is
what a budget must count: settled and unconfirmed payments, never refused ones.
"""

from __future__ import annotations

from .response import PaymentRecord


class PaymentTab:
    """Payments signed for one request: (model, record) in signing order."""

    __slots__ = ("session", "kind", "path", "model", "key", "_payments", "_recorded")

    def __init__(self, session: str, kind: str, path: str, model: str = "",
                 key: str | None = None) -> None:
        self.session, self.kind, self.path = session, kind, path
        self.key = key  # the id of the API key that made the request (its usage records')
        self.model = model  # what the next payment buys (a chat request changes it per attempt)
        self._payments: list[tuple[str, PaymentRecord]] = []
        self._recorded: set[str] = set()

    def add(self, record: PaymentRecord) -> None:
        """A payment was just signed for :attr:`model`."""
        self._payments.append((self.model, record))

    def update(self, record: PaymentRecord) -> None:
        """What the answer said about a payment already added (matched by nonce)."""
        for index, (model, old) in enumerate(self._payments):
            if old.nonce == record.nonce:
                self._payments[index] = (model, record)
                return

    def mark(self) -> int:
        """A point to measure :meth:`spent_usd` from (the payments signed so far)."""
        return len(self._payments)

    def spent_usd(self, since: int = 0) -> float:
        """USD that may have left the wallet (settled plus unconfirmed payments), counting
        the payments signed after the :meth:`mark` ``since``."""
        return sum(record.spent_usd for _, record in self._payments[since:])

    def take(self, record: PaymentRecord | None) -> None:
        """``record`` is written with the answer's usage record: :meth:`rest` skips it."""
        if record is not None:
            self._recorded.add(record.nonce)

    def rest(self) -> list[tuple[str, PaymentRecord]]:
        """The payments no record carries yet, as (model, record); each is returned once."""
        rest = [(model, record) for model, record in self._payments
                if record.nonce not in self._recorded]
        self._recorded.update(record.nonce for _, record in rest)
        return rest
