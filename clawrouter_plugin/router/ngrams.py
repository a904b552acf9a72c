"""Hashed n-grams of text: the bag-of-words part of the tier classifier's features.

Every feature is a bucket number in ``[0, BUCKETS)``: a 32-bit FNV-1a hash over the text's
code points, seeded per namespace (the user's ask, the system prompt, earlier turns, ...), so
the same word in the system prompt and in the ask are different features. The hash is stable
across processes and Python versions (Python's own ``hash`` of a str is not), because the
shipped weights are indexed by it.

Text is normalised first: lower case, every digit becomes ``0`` (``50M`` and ``10M`` look the
same), whitespace runs become one space. Word tokens are ``\\w+`` runs; character n-grams run
over the whole normalised text padded with a space at each end (punctuation included), so they
work for Chinese, Japanese and Korean, which do not separate words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # mypyc compiles i64 to a C int64_t; plain Python never evaluates it
    from mypy_extensions import i64

# Final: mypyc inlines these constants in the hashing loops
BUCKET_BITS: Final = 20
BUCKETS: Final = 1 << BUCKET_BITS
MASK: Final = BUCKETS - 1
_FNV_OFFSET: Final = 2166136261
FNV_PRIME: Final = 16777619
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"[1-9]")
# ASCII text (the common case) is normalised and split with C-speed table look-ups; every
# table gives what the general (any script) path gives for ASCII. normalize: lower case,
# digits 1-9 as 0, every character str.split() splits on as a space (0x1c-0x1f too, which
# bytes.split() keeps), so that text without runs of spaces needs no split and join;
# words: every character \w does not match as a space
_ASCII_NORMAL = bytes(48 if 49 <= c <= 57 else 32 if 28 <= c <= 31 or c in b"\t\n\v\f\r" else c
                      for c in b"".join(bytes([c]) for c in range(256)).lower())
_ASCII_WORDS = bytes(c if chr(c).isalnum() or chr(c) == "_" else 32 for c in range(128)) + bytes(
    range(128, 256))
# the same for Latin-1 text (French, German, Spanish, ...): \w is str.isalnum() or "_" there too
_LATIN1_WORDS = bytes(c if chr(c).isalnum() or chr(c) == "_" else 32 for c in range(256))


def seed(namespace: str) -> int:
    """The hash seed of a feature namespace (its name, hashed)."""
    return fold(_FNV_OFFSET, namespace)


def fold(start: int, text: str) -> int:
    """FNV-1a of ``text``'s code points, starting from ``start`` (32 bits)."""
    h: i64 = start
    # mypyc reads ord(text[i]) in place: no str object per character, and no encoded copy
    # (words are short: the copy cost more than the reads)
    for index in range(len(text)):
        h = ((h ^ ord(text[index])) * FNV_PRIME) & 0xFFFFFFFF
    return h


def bucket(namespace_seed: int, text: str) -> int:
    """The bucket of one named feature."""
    return fold(namespace_seed, text) & MASK


def normalize(text: str) -> str:
    """Lower case, digits as 0, whitespace runs as one space, no leading/trailing space."""
    if text.isascii():
        data = text.encode("ascii").translate(_ASCII_NORMAL)  # every whitespace now a space
        if b"  " in data or data[:1] == b" " or data[-1:] == b" ":
            data = b" ".join(data.split())
        return data.decode("ascii")
    lowered = text.lower()
    if _DIGIT.search(lowered) is not None:
        lowered = _DIGIT.sub("0", lowered)
    return " ".join(lowered.split())


def latin1(text: str) -> bool:
    """Whether every character of ``text`` is below U+0100 (one pass in C, a copy of such
    text): then regex scans for other scripts or symbols can be skipped, and a bytes table
    can stand for a character class."""
    return len(text.encode("latin-1", "ignore")) == len(text)


def words(text: str) -> list[str]:
    """The word tokens (``\\w+`` runs) of normalised text."""
    if text.isascii():  # bytes.translate: no dict look-up per character, as str.translate
        return text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
    if latin1(text):  # a table look-up per character instead of the regex's Unicode tests
        return text.encode("latin-1").translate(_LATIN1_WORDS).decode("latin-1").split()
    return _WORD.findall(text)


def add_words(out: list[int], tokens: list[str], uni_seed: int, bi_seed: int) -> None:
    """Append the buckets of the unigrams (and bigrams when ``bi_seed`` is not 0) of
    ``tokens`` to ``out``, one per occurrence."""
    previous: i64 = -1
    bigrams: i64 = bi_seed
    for token in tokens:
        h: i64 = fold(uni_seed, token)
        out.append(h & MASK)
        if bigrams and previous >= 0:
            out.append((((previous ^ h) * FNV_PRIME) ^ bigrams) & MASK)
        previous = h


def code_points(text: str) -> tuple[bytes, int]:
    """`` text `` (a space added at each end) as bytes holding its code points, and how many
    bytes each takes: 1 for ASCII and other Latin-1 text (French, German, Spanish, ...), else
    4 (UTF-32, little-endian; lone surrogates kept). Indexing bytes is cheap where iterating
    a str is not (one object per character)."""
    padded = " " + text + " "
    if padded.isascii():
        return padded.encode("ascii"), 1
    narrow = padded.encode("latin-1", "ignore")
    if len(narrow) == len(padded):  # nothing left out: every code point is below 256
        return narrow, 1
    return padded.encode("utf-32-le", "surrogatepass"), 4


def code_at(codes: bytes, width: i64, index: i64) -> i64:
    """The code point at ``index`` of :func:`code_points`'s bytes."""
    if width == 1:
        return codes[index]
    at = 4 * index
    b0: i64 = codes[at]  # typed one by one: shifts of native integers, not of int objects
    b1: i64 = codes[at + 1]
    b2: i64 = codes[at + 2]
    b3: i64 = codes[at + 3]
    return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)


def add_chars(out: list[int], text: str, low: int, high: int, char_seed: int) -> None:
    """Append the buckets of the character n-grams (``low`` to ``high`` characters) of
    `` text `` to ``out``, one per occurrence: for each start, the n-grams by length."""
    codes, width = code_points(text)
    size: i64 = len(codes) // width
    shortest: i64 = low
    longest: i64 = high
    start: i64 = 0
    while start + shortest <= size:
        stop = start + longest
        if stop > size:
            stop = size
        h: i64 = char_seed
        index = start
        while index < stop:
            h = ((h ^ code_at(codes, width, index)) * FNV_PRIME) & 0xFFFFFFFF
            index += 1
            if index - start >= shortest:
                out.append(h & MASK)
        start += 1
