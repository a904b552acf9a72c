"""The one chat-completion pipeline shared by the HTTP proxy and the plugin's provider hook.

parse → chat-command intercept → resolve model → response cache → route (with session pin)
→ wallet / spend guard → in-flight dedup → upstream with fallback → reply → usage record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping, NamedTuple

import orjson

from ..ask import find_ask
from ..errors import BadRequest, BudgetExceeded, ClawRouterError, ShuttingDown
from ..payment.tab import PaymentTab
from ..state.cache import CachedResponse
from ..state.cache_key import cache_bypassed, cache_key
from ..state.headers import header
from ..state.request_state import Answered
from ..state.sessions import session_id
from .chat_format import assistant_completion, completion_to_chunks
from .intercept import ChatCommand, find_command
from .recorder import record_payments
from .reply import ChunkChannel, Reply
from .spend_guard import SpendGuard
from .upstream_body import tools_dropped
from .upstream_chat import CHAT_PATH, Attempt, UpstreamChat

if TYPE_CHECKING:
    from ..keys.model import ApiKey
    from ..router import RoutingDecision
    from ..services import Services
    from ..state.request_state import RequestState

log = logging.getLogger("clawrouter.pipeline")

Intercept = Callable[[ChatCommand, str], Awaitable[str]]  # (command, session id) → reply
RELAYED_HEADER = "x-clawrouter-relayed"  # a host's word that the message came from a channel


@dataclass
class Outcome:
    """A finished upstream answer, shareable with identical concurrent requests."""

    completion: dict
    decision: "RoutingDecision"
    attempt: Attempt


class _SharedOutcome:
    """How an :class:`Outcome` reaches identical requests waiting in other processes: the
    answering attempt's facts and its JSON bytes (the waiter keeps its own decision, and
    paid nothing)."""

    __slots__ = ("decision",)

    def __init__(self, decision: "RoutingDecision") -> None:
        self.decision = decision

    def encode(self, outcome: Outcome) -> bytes:
        attempt = outcome.attempt
        head = orjson.dumps([attempt.model, attempt.fallbacks, attempt.input_tokens,
                             attempt.output_tokens])
        return head + b"\n" + attempt.encoded

    def decode(self, data: bytes) -> Outcome:
        head, _, encoded = data.partition(b"\n")
        model, fallbacks, input_tokens, output_tokens = orjson.loads(head)
        completion = orjson.loads(encoded)
        return Outcome(completion, self.decision, Attempt(
            model=model, completion=completion, encoded=encoded, paid_usd=0.0,
            fallbacks=fallbacks, input_tokens=input_tokens, output_tokens=output_tokens))


class _Early(NamedTuple):
    """A decision made while the request's state was on its way, and what it assumed."""

    excluded: frozenset[str]
    min_tier: str | None
    decision: "RoutingDecision"


@dataclass
class Plan:
    body: dict
    session: str
    requested: str
    decision: "RoutingDecision"
    chain: tuple[str, ...]
    cache_key: str | None
    started: float
    headers: dict[str, str]
    api_key: "ApiKey | None"  # the caller, on a shared proxy with API keys
    state: "RequestState"  # its view of the shared state


class Pipeline:
    """Answers chat-completion bodies; see the module docstring for the order of steps."""

    def __init__(self, services: "Services") -> None:
        self.services = services
        self.intercepts: dict[str, Intercept] = {}
        self.spend_guard = SpendGuard(services)
        self.upstream = UpstreamChat(services, self.spend_guard.mark_empty)
        self.closing = False  # set by drain(): new requests are refused
        self._work: set[asyncio.Task] = set()  # tasks doing a request's work right now
        self._idle: asyncio.Future | None = None  # drain() waits for it: no work left
        self._aborted: set[asyncio.Task] = set()  # work drain() cancelled
        self.rerouted = 0  # requests routed again: the state was not what routing assumed

    async def chat(self, body: dict, headers: Mapping[str, str], *,
                   api_key: "ApiKey | None" = None) -> Reply:
        """Answer one chat-completions request body (from ``api_key``'s caller on a shared
        proxy). Raises ClawRouterError before streaming."""
        if self.closing:
            raise ShuttingDown()
        started = time.perf_counter()
        _validate(body)
        stream = body.get("stream") is True
        sid = session_id(headers, body)
        if self.intercepts:
            command = find_command(find_ask(body), self.intercepts,
                                   relayed=_truthy(header(headers, RELAYED_HEADER)))
            if command is not None:
                return self._intercepted(command, sid)

        services = self.services
        requested = str(body.get("model") or "auto")
        name = services.catalog.resolve(requested)
        key = None if cache_bypassed(body, headers) else cache_key(body)
        pinned = services.catalog.is_profile(name) and services.config.sessions.enabled
        opening = await services.requests.start(key, sid if pinned else None)
        state, early = opening.ready, None
        if state is None:  # the state is on its way: route meanwhile with what is likely
            early = self._route_early(body, name, opening.likely_excluded, opening.likely_tier)
            state = await opening.state()
        if state.hit is not None:
            return self._cache_hit(state.hit, sid, requested, started, api_key)
        try:
            plan = await self._plan(body, sid, requested, name, key, state, early, started,
                                    api_key)
        except BaseException:
            state.abandon()
            raise
        # identical concurrent requests share one answer (and one payment), across the
        # processes of a team too
        share = _SharedOutcome(plan.decision) if key is not None else None
        if not stream:
            work = asyncio.current_task()
            assert work is not None
            self._work.add(work)
            try:
                outcome, shared = await state.run(lambda: self._fetch(plan, None), share)
            except asyncio.CancelledError:
                if work not in self._aborted:
                    raise
                work.uncancel()  # drain() cancelled it: the caller gets an error, not a cancel
                raise ShuttingDown() from None
            finally:
                self._untrack(work)
            return Reply(headers=_final_headers(plan, outcome, shared), decision=outcome.decision,
                         completion=outcome.completion, encoded=outcome.attempt.encoded)
        channel = ChunkChannel()
        task = self._track(asyncio.create_task(
            state.run(lambda: self._fetch(plan, channel), share)))
        return Reply(headers=plan.headers, decision=plan.decision, channel=channel, task=task)

    def _route_early(self, body: dict, name: str, excluded: frozenset[str],
                     min_tier: str | None) -> _Early | None:
        """Route with a guess of the state; None when routing fails (it fails the same way
        again once the state is known, and is answered then)."""
        try:
            decision = self.services.router.route(body, name, excluded=excluded,
                                                  min_tier=min_tier)
        except Exception:  # noqa: BLE001 - a pure function: routing again raises it again
            return None
        return _Early(excluded, min_tier, decision)

    async def _plan(self, body: dict, sid: str, requested: str, name: str, key: str | None,
                    state: "RequestState", early: _Early | None, started: float,
                    api_key: "ApiKey | None") -> Plan:
        """Route the request (within the session's pin and the exclusions; ``early`` is a
        decision made before they were known, kept when it assumed them right), then fit
        the decision to the wallet and the budgets."""
        services = self.services
        pin, excluded = state.pin, state.excluded
        min_tier = pin.tier if pin else None
        if early is not None and early.min_tier == min_tier and early.excluded == excluded:
            decision = early.decision
        else:
            if early is not None:
                self.rerouted += 1
            decision = services.router.route(body, name, excluded=excluded, min_tier=min_tier)
        decision = self._as_tried(decision, pin.model if pin else None)
        # the guard checks (and a notice names) the model that will really be tried first
        decision, notice = await self.spend_guard.check(body, name, decision, sid,
                                                        self._as_tried, excluded, api_key)
        reply_headers = _decision_headers(decision, sid, notice)
        if tools_dropped(body, services.catalog.chat[decision.model]):
            reply_headers["x-clawrouter-tools"] = "dropped"
        _log_decision(decision)
        if services.on_routed is not None:
            services.on_routed(decision)
        return Plan(body, sid, requested, decision, decision.chain, key, started, reply_headers,
                    api_key, state)

    def _as_tried(self, decision: "RoutingDecision", pinned: str | None = None
                  ) -> "RoutingDecision":
        """``decision`` with its chain in the order the upstream will try it: the session's
        pinned model first when the chain holds it (a conversation stays on its model), then
        the upstream's order (paid models first, the free model last), repriced to match."""
        chain = decision.chain
        if pinned is not None and pinned in chain:
            chain = (pinned, *(model for model in chain if model != pinned))
        return self.services.router.reorder(decision, tuple(self.upstream.order(chain)))

    async def drain(self, grace: float) -> None:
        """Shutting down: refuse new requests, give the work in flight ``grace`` seconds to
        finish (a paid answer is then cached and recorded even if its client left), then
        cancel what is left; its requests end with a :class:`ShuttingDown` error."""
        self.closing = True
        if not self._work:
            return
        self._idle = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._idle], timeout=grace)
        if self._work:
            self._aborted = set(self._work)
            for task in self._aborted:
                task.cancel()
            await asyncio.wait([self._idle], timeout=grace)

    def _track(self, task: asyncio.Task) -> asyncio.Task:
        """Count ``task`` as work in flight until it is done (see :meth:`drain`)."""
        self._work.add(task)
        task.add_done_callback(self._untrack)
        return task

    def _untrack(self, task: asyncio.Task) -> None:
        self._work.discard(task)
        if not self._work and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def _fetch(self, plan: Plan, sink: ChunkChannel | None) -> Outcome:
        """Call the upstream along the chain, then pin, cache and record usage."""
        services = self.services
        decision = plan.decision
        tab = PaymentTab(plan.session, "chat", CHAT_PATH,
                         key=plan.api_key.id if plan.api_key is not None else None)
        try:
            attempt = await self.upstream.call(plan.body, plan.chain, plan.session, decision,
                                               sink, tab, plan.api_key)
            await self._keep(plan, attempt, tab)
        finally:  # every other payment signed for this request gets its own record
            record_payments(services.usage, tab, requested=plan.requested, tier=decision.tier,
                            profile=decision.profile,
                            latency_ms=(time.perf_counter() - plan.started) * 1000)
        return Outcome(completion=attempt.completion, decision=decision, attempt=attempt)

    async def _keep(self, plan: Plan, attempt: Attempt, tab: PaymentTab) -> None:
        """Pin the session's model, cache the answer and record its usage."""
        services = self.services
        decision = plan.decision
        answered = Answered(plan.session, attempt.model, decision.tier, decision.table) \
            if decision.tier != "DIRECT" and services.config.sessions.enabled else None
        cached = CachedResponse(
            status=200,
            headers={"x-clawrouter-tier": decision.tier, "x-clawrouter-model": attempt.model},
            body=attempt.encoded,
            model=attempt.model,
            stored_at=time.time(),
        ) if plan.cache_key is not None else None
        await plan.state.keep(answered, cached)
        services.recorder.chat(
            session=plan.session,
            requested=plan.requested,
            decision=decision,
            attempt=attempt,
            latency_ms=(time.perf_counter() - plan.started) * 1000,
            tab=tab,
        )

    def _cache_hit(self, hit: CachedResponse, sid: str, requested: str, started: float,
                   api_key: "ApiKey | None") -> Reply:
        completion = orjson.loads(hit.body)
        self.services.recorder.cache_hit(
            session=sid,
            requested=requested,
            model=hit.model or "unknown",
            tier=hit.headers.get("x-clawrouter-tier", "CACHE"),
            completion=completion,
            latency_ms=(time.perf_counter() - started) * 1000,
            key=api_key.id if api_key is not None else None,
        )
        headers = {"x-clawrouter-cache": "HIT", "x-clawrouter-session": sid,
                   "x-clawrouter-model": hit.model or "unknown"}
        return Reply(headers=headers, completion=completion, encoded=hit.body)

    def _intercepted(self, command: ChatCommand, sid: str) -> Reply:
        """Run a chat command typed as the user's ask; reply as the assistant."""
        name = command.name
        intercept = self.intercepts[name]
        model = f"clawrouter/{name}"

        async def produce() -> str:
            try:
                return await intercept(command, sid)
            except ClawRouterError as exc:
                return f"⚠️ /{name} failed: {exc.message}"

        headers = {"x-clawrouter-command": name, "x-clawrouter-session": sid}
        channel = ChunkChannel()

        async def run() -> tuple[None, bool]:
            text = await produce()
            for chunk in completion_to_chunks(assistant_completion(text, model)):
                channel.put_nowait(chunk)
            return None, False

        return Reply(headers=headers, channel=channel, task=self._track(asyncio.create_task(run())))


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes")


def _validate(body: object) -> None:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{index}] must be an object with a 'role'")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequest("'model' must be a string")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be an array")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")


def _decision_headers(decision: "RoutingDecision", sid: str, notice: str | None) -> dict[str, str]:
    headers = {
        "x-clawrouter-profile": decision.profile,
        "x-clawrouter-tier": decision.tier,
        "x-clawrouter-model": decision.model,
        "x-clawrouter-confidence": f"{decision.confidence:.2f}",
        "x-clawrouter-agentic": "1" if decision.agentic else "0",
        "x-clawrouter-session": sid,
        "x-clawrouter-cache": "MISS",
        # what the request is sent and priced with (router/output_cap.py)
        "x-clawrouter-output-cap": str(decision.output_tokens),
        "x-clawrouter-estimate": f"{decision.cost_estimate:.6f}",
    }
    if notice:
        headers["x-clawrouter-notice"] = notice
    return headers


def _final_headers(plan: Plan, outcome: Outcome, shared: bool) -> dict[str, str]:
    headers = dict(plan.headers)
    headers["x-clawrouter-model"] = outcome.attempt.model
    # an identical concurrent request paid for this answer; this one cost nothing
    headers["x-clawrouter-cost"] = "0.000000" if shared else f"{outcome.attempt.paid_usd:.6f}"
    if shared:
        headers["x-clawrouter-dedup"] = "shared"
    if outcome.attempt.fallbacks:
        headers["x-clawrouter-fallbacks"] = str(outcome.attempt.fallbacks)
    return headers


def _log_decision(decision: "RoutingDecision") -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(
            "[%s] %s est $%.4f (output cap %d, saved %d%%) %s",
            decision.tier,
            decision.model,
            decision.cost_estimate,
            decision.output_tokens,
            round(decision.savings * 100),
            _FirstSignals(decision),
        )


class _FirstSignals:
    """A decision's first four signals, joined when the log line is formatted (in the log's
    thread, log_output.py): working out a decision's explanation is not on the request path."""

    __slots__ = ("decision",)

    def __init__(self, decision: "RoutingDecision") -> None:
        self.decision = decision

    def __str__(self) -> str:
        return ", ".join(self.decision.signals[:4])


__all__ = ["Pipeline", "Outcome", "BudgetExceeded"]
