"""The redis backend's ``/exclude`` list: one Redis set (``<prefix>:exclude``) of catalog ids
shared by every process, on top of each process's config ``excludeModels``.

:meth:`RedisExclusions.all` reads the set on every routed request (one SMEMBERS), so an
exclusion added or removed through one process is honoured by all on their next request.
While Redis cannot be reached, routing uses the set last read; adding, removing or clearing
says it cannot be done (StateUnavailable) rather than pretending.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..catalog import Catalog
from ..errors import BadRequest
from .exclusions import ExclusionNames
from .redis_conn import RedisLink
from .redis_guard import RedisGuard


class RedisExclusions(ExclusionNames):
    """A :class:`~clawrouter_plugin.state.stores.ModelExclusions` in Redis (see the module
    doc)."""

    def __init__(self, link: RedisLink, catalog: Catalog, initial: Iterable[str] = ()):
        super().__init__(catalog, initial)
        self._link = link
        self._key = link.key("exclude")
        self._guard = RedisGuard(link, "exclusions", "routing uses the exclusions last read")
        self._members: set[bytes] | None = None  # the set last read
        self._all = self._config  # what it means, with the config's
        self.warnings: list[str] = []  # nothing can be damaged on disk here

    async def all(self) -> frozenset[str]:
        """Every excluded catalog id: the config's and the team's set (last read while Redis
        cannot be reached)."""
        members = await self._guard.run(lambda: self._link.client.smembers(self._key), None)
        if members is not None and members != self._members:
            self._members = members
            self._all = self._known(member.decode() for member in members)
        return self._all

    async def add(self, name: str) -> str:
        """Exclude ``name`` on every process; the catalog id. Unknown -> BadRequest."""
        model = self._resolve(name, BadRequest)
        if model not in self._config:
            await self._guard.must(lambda: self._link.client.sadd(self._key, model))
        return model

    async def remove(self, name: str) -> str:
        """Stop excluding ``name`` on every process; what was removed. BadRequest if it was
        not excluded."""
        client = self._link.client
        members = await self._guard.must(lambda: client.smembers(self._key))
        matches, shown = self._removal((member.decode() for member in members), name)
        await self._guard.must(lambda: client.srem(self._key, *matches))
        return shown

    async def clear(self) -> None:
        """Empty the team's list (config exclusions stay)."""
        await self._guard.must(lambda: self._link.client.delete(self._key))
