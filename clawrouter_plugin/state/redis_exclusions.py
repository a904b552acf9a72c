"""The redis backend's ``/exclude`` list: one Redis set (``<prefix>:exclude``) of catalog ids
shared by every process, on top of each process's config ``excludeModels``.

Every change also writes a new random *version* (``<prefix>:exclude:version``) in the same
transaction. A routed request reads only that version (in the request state's opening
script, :mod:`.redis_request_state`), and the set itself only when the version differs from
the one this process last saw: an exclusion added or removed through one process is
honoured by all on their next request, without sending the list on every request.
:meth:`RedisExclusions.all` reads the set itself. While Redis cannot be reached, routing uses
the set last read; adding, removing or clearing says it cannot be done (StateUnavailable)
rather than pretending.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from ..catalog import Catalog
from ..errors import BadRequest
from .exclusions import ExclusionNames
from .redis_conn import RedisLink
from .redis_guard import RedisGuard

UNSEEN = b"-"  # the version this process knows before its first read (never a real one)


class RedisExclusions(ExclusionNames):
    """A :class:`~clawrouter_plugin.state.stores.ModelExclusions` in Redis (see the module
    doc)."""

    def __init__(self, link: RedisLink, catalog: Catalog, initial: Iterable[str] = ()):
        super().__init__(catalog, initial)
        self._link = link
        self.key = link.key("exclude")
        self.version_key = link.key("exclude", "version")
        self.version = UNSEEN  # of the set last read by a request's opening script
        self._guard = RedisGuard(link, "exclusions", "routing uses the exclusions last read")
        self._members: set[bytes] | None = None  # the set last read
        self._all = self._config  # what it means, with the config's
        self.warnings: list[str] = []  # nothing can be damaged on disk here

    async def all(self) -> frozenset[str]:
        """Every excluded catalog id: the config's and the team's set (last read while Redis
        cannot be reached)."""
        members = await self._guard.run(lambda: self._link.client.smembers(self.key), None)
        if members is not None:
            self._seen(set(members))
        return self._all

    def current(self, version: bytes, members: list[bytes] | None) -> frozenset[str]:
        """Every excluded catalog id, given the ``version`` a request's opening script read
        and the set's ``members`` (read by it only when the version was not this one's)."""
        if members is not None:
            self.version = version
            self._seen(set(members))
        return self._all

    def last_read(self) -> frozenset[str]:
        """Every excluded catalog id as last read (while Redis cannot be reached)."""
        return self._all

    def _seen(self, members: set[bytes]) -> None:
        if members != self._members:
            self._members = members
            self._all = self._known(member.decode() for member in members)

    async def add(self, name: str) -> str:
        """Exclude ``name`` on every process; the catalog id. Unknown -> BadRequest."""
        model = self._resolve(name, BadRequest)
        if model not in self._config:
            await self._guard.must(lambda: self._change(lambda pipe: pipe.sadd(self.key, model)))
        return model

    async def remove(self, name: str) -> str:
        """Stop excluding ``name`` on every process; what was removed. BadRequest if it was
        not excluded."""
        members = await self._guard.must(lambda: self._link.client.smembers(self.key))
        matches, shown = self._removal((member.decode() for member in members), name)
        await self._guard.must(lambda: self._change(lambda pipe: pipe.srem(self.key, *matches)))
        return shown

    async def clear(self) -> None:
        """Empty the team's list (config exclusions stay)."""
        await self._guard.must(lambda: self._change(lambda pipe: pipe.delete(self.key)))

    async def _change(self, change) -> None:
        """``change(pipe)`` and a new version, in one transaction."""
        async with self._link.client.pipeline(transaction=True) as pipe:
            change(pipe)
            pipe.set(self.version_key, secrets.token_hex(8))
            await pipe.execute()
