"""What one routed request reads from and writes to the state it may share with other
processes, behind one interface, so that a remote backend can batch it into as few round
trips as it likes while the pipeline stays the same for every backend:

1. :meth:`RequestStates.start` (or :meth:`RequestStates.open`) before routing: the cached
   answer (a hit needs nothing else), the session's pin and the excluded models. ``start``
   lets a backend whose answer takes a round trip say what the pin and the exclusions
   probably are, so that the pipeline routes while the answer is on its way (and routes
   again if it was wrong);
2. :meth:`RequestState.run`: the upstream work, shared by identical concurrent requests
   (in-flight dedup on the cache key);
3. :meth:`RequestState.keep`, inside that work, after the answer: the session's pin update
   and the answer for the cache;
4. :meth:`RequestState.abandon` when the request ends between 1 and 2 (refused by a budget,
   a bad model), so that nothing it took is held.

:class:`LocalRequests` is the local backend's (the stores answer at once: plain calls, one
after the other); :class:`~.redis_request_state.RedisRequests` is the Redis one (one script
before the upstream, one after). :func:`~.backends.open_stores` picks one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple, Protocol, TypeVar

from .cache import CachedResponse
from .dedup import InFlight, Shareable
from .sessions import Pin
from .stores import CacheStore, ModelExclusions, SessionPins

T = TypeVar("T")


class Answered(NamedTuple):
    """A model answered a request of session ``sid`` routed to ``tier`` of ``table``
    (see :meth:`~.stores.SessionPins.answered`)."""

    sid: str
    model: str
    tier: str
    table: str


class RequestState(Protocol):
    """One request's view of the shared state, from :meth:`RequestStates.open`."""

    hit: CachedResponse | None  # the cached answer (then nothing else is read or needed)
    pin: Pin | None  # the session's pin (None: none, or no session was asked for)
    excluded: frozenset[str]  # every excluded catalog id

    async def run(self, factory: Callable[[], Awaitable[T]],
                  share: Shareable[T] | None) -> tuple[T, bool]:
        """``(result, shared)`` of ``factory()``, shared with identical concurrent requests
        (same cache key; none without one). ``share`` says how a result crosses to another
        process (None: it does not). ``shared`` is False for the caller whose work ran."""

    async def keep(self, answered: Answered | None, cached: CachedResponse | None) -> None:
        """After the answer, from inside the work of :meth:`run`: update the session's pin
        (``answered``) and store ``cached`` under the request's cache key (when it has one).
        A backend may send these with the end of the work; either way they are done before
        the request's result reaches anyone else (other processes included)."""

    def abandon(self) -> None:
        """The request ends without :meth:`run` (an error before it): let go of anything
        :meth:`RequestStates.open` took for it."""


class Opening(Protocol):
    """A request's state on its way, from :meth:`RequestStates.start`."""

    ready: RequestState | None  # the state, when it is known without waiting
    # what this process last saw (a guess, to route with while the state is on its way):
    likely_tier: str | None  # the session pin's tier
    likely_excluded: frozenset[str]  # the excluded catalog ids

    async def state(self) -> RequestState:
        """The request's state (:attr:`ready`, or what the backend answers)."""


class RequestStates(Protocol):
    """Opens a :class:`RequestState` per request."""

    async def start(self, cache_key: str | None, sid: str | None) -> Opening:
        """Start opening the state of a request (see :meth:`open`); returns once it is
        asked for, which may be before it has answered."""

    async def open(self, cache_key: str | None, sid: str | None) -> RequestState:
        """The state of a request with ``cache_key`` (None: not cacheable, not shared) in
        session ``sid`` (None: no pin is wanted)."""

    def in_flight(self) -> int:
        """How many distinct requests this process is working on (or waiting for) now."""


class LocalRequests:
    """The local backend's :class:`RequestStates`: plain calls of this process's stores."""

    def __init__(self, cache: CacheStore, sessions: SessionPins, exclusions: ModelExclusions,
                 inflight: InFlight):
        self.cache, self.sessions, self.exclusions = cache, sessions, exclusions
        self.inflight = inflight

    async def start(self, cache_key: str | None, sid: str | None) -> Ready:
        """See :meth:`RequestStates.start`: the state is read at once."""
        return Ready(await self.open(cache_key, sid))

    async def open(self, cache_key: str | None, sid: str | None) -> LocalRequest:
        """See :meth:`RequestStates.open`; a hit skips the other reads."""
        if cache_key is not None:
            hit = await self.cache.get(cache_key)
            if hit is not None:
                return LocalRequest(self, cache_key, hit, None, frozenset())
        pin = await self.sessions.get(sid) if sid is not None else None
        return LocalRequest(self, cache_key, None, pin, await self.exclusions.all())

    def in_flight(self) -> int:
        """See :meth:`RequestStates.in_flight`."""
        return self.inflight.in_flight()


class LocalRequest:
    """A :class:`RequestState` of :class:`LocalRequests`."""

    __slots__ = ("_states", "_key", "hit", "pin", "excluded")

    def __init__(self, states: LocalRequests, key: str | None, hit: CachedResponse | None,
                 pin: Pin | None, excluded: frozenset[str]):
        self._states, self._key = states, key
        self.hit, self.pin, self.excluded = hit, pin, excluded

    async def run(self, factory: Callable[[], Awaitable[T]],
                  share: Shareable[T] | None) -> tuple[T, bool]:
        """See :meth:`RequestState.run`."""
        key = self._key if self._key is not None else f"nocache:{id(self)}"
        return await self._states.inflight.run(key, factory, share)

    async def keep(self, answered: Answered | None, cached: CachedResponse | None) -> None:
        """See :meth:`RequestState.keep`: done at once."""
        states = self._states
        if answered is not None:
            await states.sessions.answered(*answered)
        if cached is not None and self._key is not None:
            await states.cache.put(self._key, cached)

    def abandon(self) -> None:
        """Nothing was taken."""


class Ready:
    """An :class:`Opening` whose state is known: nothing is left to guess."""

    __slots__ = ("ready",)
    likely_tier = None
    likely_excluded: frozenset[str] = frozenset()

    def __init__(self, state: RequestState):
        self.ready = state

    async def state(self) -> RequestState:
        """See :meth:`Opening.state`."""
        return self.ready
