"""Deterministic filler documents for the long-input requests of the routing corpus.

A corpus row may carry ``"pad": {"chars": N, "kind": K, "seed": S}`` instead of a typed-out
long document. :func:`filler` turns that into text: exactly ``N`` characters that look like
``K`` (prose, code, log, csv or json), the same text for the same seed (``random.Random``;
Python only promises its ``random()`` stream across versions, so the frozen test split hashes
the pad spec, never the generated text). The text is built from whole lines or paragraphs,
so 600,000 characters take a few milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

KINDS = ("prose", "code", "log", "csv", "json")

_NOUNS = (
    "committee report budget harbour village council winter season market river bridge "
    "farmer teacher contract survey museum railway station network supplier customer "
    "schedule warehouse district hospital library garden engine factory harvest treaty "
    "archive letter manuscript journey coastline valley tenant landlord invoice shipment "
    "witness inspector festival orchestra ministry region province border estate mill "
    "quarry lighthouse ferry clinic workshop apprentice mayor assembly newspaper editor"
).split()
_VERBS = (
    "reviewed approved delayed announced described recorded examined questioned rebuilt "
    "expanded reduced financed inspected opened closed moved supported challenged repaired "
    "documented measured replaced postponed welcomed criticised negotiated signed revised"
).split()
_ADJECTIVES = (
    "annual regional local northern southern early late modest considerable uncertain "
    "formal brief detailed careful public private temporary permanent seasonal older "
    "narrow wide quiet busy familiar unusual steady gradual sudden costly practical"
).split()
_LINKS = (
    "after the meeting|in the following months|according to the minutes|despite the rain|"
    "for the first time|at the end of the year|without much debate|under the new rules|"
    "by the spring|during the inspection|as expected|in the old town|with some reluctance"
).split("|")

_LEVELS = ("INFO",) * 12 + ("DEBUG",) * 5 + ("WARN",) * 2 + ("ERROR",)
_SERVICES = ("api-gateway", "auth", "billing", "scheduler", "search", "worker", "ingest",
             "notifier", "cache", "reports")
_MESSAGES = (
    "request completed status={status} duration_ms={ms} path=/v2/{noun}s/{n}",
    "cache miss key={noun}:{n} fallback=db latency_ms={ms}",
    "job {noun}-sync finished processed={n} failed={small} elapsed_ms={ms}",
    "connection pool size={small} idle={small} waiting=0",
    "retrying upstream call attempt={small} backoff_ms={ms} target={noun}-svc",
    "user session refreshed uid={n} region=eu-west-{small}",
    "slow query table={noun}s rows={n} took_ms={ms}",
    "health check ok uptime_s={n} goroutines={small}",
    "queue depth topic={noun}-events depth={n} consumers={small}",
    "config reloaded source=/etc/app/{noun}.yaml version={small}",
)

_IDENTS = ("order", "item", "user", "record", "batch", "entry", "payload", "config", "total",
           "result", "buffer", "index", "limit", "offset", "status", "report", "token", "row")
_FIRST = ("Anna", "Ben", "Chen", "Dara", "Emil", "Fatima", "Gil", "Hana", "Ivo", "Jade",
          "Kofi", "Lena", "Mateo", "Nina", "Omar", "Pia", "Ravi", "Sofia", "Tomas", "Yuki")
_LAST = ("Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hale", "Ito", "Jensen",
         "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Rossi", "Sato", "Weber")
_CITIES = ("Lisbon", "Oslo", "Lyon", "Kraków", "Porto", "Turin", "Ghent", "Leeds", "Graz",
           "Malmö", "Bilbao", "Utrecht", "Tampere", "Brno", "Cork", "Basel")


def _prose(rng: random.Random) -> Iterator[str]:
    """Paragraphs of plain sentences from a small vocabulary."""
    while True:
        sentences = []
        for _ in range(rng.randint(3, 7)):
            a, b = rng.choices(_NOUNS, k=2)
            sentence = (f"the {rng.choice(_ADJECTIVES)} {a} {rng.choice(_VERBS)} the {b} "
                        f"{rng.choice(_LINKS)}")
            if rng.random() < 0.4:
                sentence += f", and the {rng.choice(_NOUNS)} was {rng.choice(_VERBS)} again"
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        yield " ".join(sentences) + "\n\n"


def _code(rng: random.Random) -> Iterator[str]:
    """Small Python functions with docstrings, loops and conditions."""
    while True:
        name, arg, acc = rng.sample(_IDENTS, 3)
        limit = rng.randint(2, 500)
        yield (f"def {rng.choice(_VERBS)[:-1]}_{name}({arg}s, {acc}=None):\n"
               f'    """Return the {name} values of {arg}s above {limit}."""\n'
               f"    {acc} = {acc} or []\n"
               f"    for {arg} in {arg}s:\n"
               f"        if {arg}.{name} > {limit}:\n"
               f"            {acc}.append({arg}.{name} * {rng.randint(2, 9)})\n"
               f"        elif {arg}.{name} is None:\n"
               f"            raise ValueError(\"missing {name} in {arg} %s\" % {arg}.id)\n"
               f"    return {acc}\n\n\n")


def _log(rng: random.Random) -> Iterator[str]:
    """Timestamped service log lines, mostly INFO with the odd warning and error."""
    t = rng.randint(0, 86_000) * 1000
    while True:
        t += rng.randint(1, 4000)
        s, ms = divmod(t, 1000)
        message = rng.choice(_MESSAGES).format(
            status=rng.choice((200, 200, 200, 201, 204, 304, 404, 500)), ms=rng.randint(1, 2500),
            noun=rng.choice(_NOUNS), n=rng.randint(1, 99_999), small=rng.randint(1, 16))
        yield (f"2024-03-{1 + s // 86_400 % 28:02d}T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:"
               f"{s % 60:02d}.{ms:03d}Z {rng.choice(_LEVELS):<5} [{rng.choice(_SERVICES)}] "
               f"{message}\n")


def _csv(rng: random.Random) -> Iterator[str]:
    """A header and rows of customer orders."""
    yield "order_id,date,customer,city,product,quantity,unit_price,status\n"
    order = rng.randint(10_000, 90_000)
    while True:
        order += rng.randint(1, 3)
        yield (f"{order},2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
               f"{rng.choice(_FIRST)} {rng.choice(_LAST)},{rng.choice(_CITIES)},"
               f"{rng.choice(_NOUNS)}-{rng.randint(1, 40)},{rng.randint(1, 20)},"
               f"{rng.randint(1, 900)}.{rng.randint(0, 99):02d},"
               f"{rng.choice(('paid', 'paid', 'shipped', 'refunded', 'pending'))}\n")


def _json(rng: random.Random) -> Iterator[str]:
    """A JSON array of records, one object per line."""
    yield "[\n"
    n = rng.randint(1, 5000)
    while True:
        n += 1
        tags = ", ".join(f'"{t}"' for t in rng.sample(_ADJECTIVES, rng.randint(1, 3)))
        yield (f'  {{"id": {n}, "name": "{rng.choice(_FIRST)} {rng.choice(_LAST)}", '
               f'"city": "{rng.choice(_CITIES)}", "active": {rng.choice(("true", "false"))}, '
               f'"score": {rng.randint(0, 1000) / 10}, "tags": [{tags}]}},\n')


_GENERATORS: dict[str, Callable[[random.Random], Iterator[str]]] = {
    "prose": _prose, "code": _code, "log": _log, "csv": _csv, "json": _json}


def filler(chars: int, kind: str, seed: int) -> str:
    """Exactly ``chars`` characters of ``kind`` text, the same for the same arguments."""
    if kind not in _GENERATORS:
        raise ValueError(f"unknown filler kind {kind!r} (expected one of {', '.join(KINDS)})")
    if chars < 0:
        raise ValueError("filler length must not be negative")
    pieces: list[str] = []
    size = 0
    for piece in _GENERATORS[kind](random.Random(seed)):
        if size >= chars:
            break
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)[:chars]
