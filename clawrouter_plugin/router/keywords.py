"""Keyword matching: every keyword list compiled once into set and substring lookups.

Text and keywords go through the same :func:`normalize` (lower case, punctuation to spaces,
Arabic diacritics dropped), so "step-by-step" matches "step by step" and "what's" matches
"what's". Then:

- single words match whole tokens (a set intersection, so "def" never matches "default");
- phrases match as `` phrase `` inside the padded text, tried only when their longest word
  occurs;
- ``stem*`` matches at the start of a word (tried only when a word starts with its first three
  letters, and not in plain-ASCII English text: stems are for inflected languages);
- terms in scripts that attach particles or do not separate words (Chinese, Japanese, Korean,
  Arabic of three or more letters) match as substrings, tried only when their first character
  occurs in the text.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from operator import itemgetter

from .ngrams import latin1

# punctuation that becomes a space; "_", "+" and "#" stay word characters (snake_case, c++, c#)
_PUNCT = set(string.punctuation) - set("_+#") | set(
    "“”„‘’‚«»‹›¿¡—–―…·•‧、。，．！？：；（）【】「」『』《》〈〉［］｛｝〜～・¨´`"
)
_TABLE: dict[int, str | None] = {ord(ch): " " for ch in _PUNCT | set("\n\r\t\f\v")}
# Arabic diacritics (harakat, shadda, sukun, superscript alef) and the tatweel are dropped
_TABLE.update({cp: None for cp in range(0x064B, 0x0660)})
_TABLE.update({0x0670: None, 0x0640: None})

# (first, last, minimum length) of scripts matched as substrings
_SUBSTRING_SCRIPTS = (
    (0x3040, 0x30FF, 1),  # Hiragana, Katakana
    (0x3400, 0x9FFF, 1),  # CJK ideographs
    (0xF900, 0xFAFF, 1),
    (0x1100, 0x11FF, 1),  # Hangul
    (0x3130, 0x318F, 1),
    (0xAC00, 0xD7AF, 1),
    (0x0600, 0x06FF, 3),  # Arabic
    (0x0750, 0x077F, 3),
)

# any character of those scripts: every substring term has one, so text without any needs no
# substring search (a regex scan of Latin or Cyrillic text costs far less than looking each of
# its characters up in a set)
_SUBSTRING_SCRIPT = re.compile("[" + "".join(f"{chr(first)}-{chr(last)}"
                                             for first, last, _ in _SUBSTRING_SCRIPTS) + "]")

# the same mapping for ASCII text, as a bytes table (bytes.translate is much faster)
_ASCII_TABLE = bytes(ord(_TABLE.get(b) or chr(b)) if b < 128 else b for b in range(256))


# the same mapping for other text, as two regular expressions: str.translate looks every
# character up in a dict, where a regex scans a character class in C
_SPACED = re.compile("[" + "".join(re.escape(chr(cp)) for cp, to in sorted(_TABLE.items())
                                   if to is not None) + "]")
_DROPPED = re.compile("[" + "".join(re.escape(chr(cp)) for cp, to in sorted(_TABLE.items())
                                    if to is None) + "]")


def normalize(text: str) -> str:
    """Lower-case ``text``, turn punctuation into spaces, and pad it with one space each side."""
    if text.isascii():
        return " " + text.encode().lower().translate(_ASCII_TABLE).decode() + " "
    spaced = _SPACED.sub(" ", text.lower())
    if not latin1(spaced):  # the dropped marks are Arabic: none in Latin-1 text
        spaced = _DROPPED.sub("", spaced)
    return " " + spaced + " "


def _substring_term(term: str) -> bool:
    letters = [ch for ch in term if not ch.isspace()]
    for first, last, minimum in _SUBSTRING_SCRIPTS:
        if any(first <= ord(ch) <= last for ch in letters):
            return len(letters) >= minimum
    return False


STEM_KEY = 3  # stems are looked up by the first letters of each word
# Stems are for inflected languages. Plain-ASCII text containing these words reads as English,
# where stems are not tried (list English word forms explicitly); this saves a pass per word.
ENGLISH_MARKERS = frozenset({"the", "is", "are", "what", "how", "my", "you", "and", "of",
                             "it", "this", "that", "with", "for", "to", "why", "can", "should"})
_stem_key = itemgetter(slice(0, STEM_KEY))
Hit = tuple[str, str]  # (dimension, keyword as written in the list)


class KeywordMatcher:
    """All keyword lists of all dimensions, precompiled for fast scanning."""

    def __init__(self, lists: Mapping[str, Iterable[str]]):
        words: dict[str, list[Hit]] = {}
        phrases: dict[str, list[tuple[str, Hit]]] = {}
        self._stems: dict[str, list[tuple[str, Hit]]] = {}
        self._char_needles: dict[str, list[tuple[str, Hit]]] = {}
        seen: set[tuple[str, str]] = set()
        for dim, entries in lists.items():
            for word in entries:
                self._add(dim, word, seen, words, phrases)
        # one lookup per word: (keywords that are this word, phrases keyed by this word)
        self._index = {key: (tuple(words.get(key, ())), tuple(phrases.get(key, ())))
                       for key in words.keys() | phrases.keys()}
        self._keys = frozenset(self._index)
        self._char_keys = frozenset(self._char_needles)
        self._stem_keys = frozenset(self._stems)

    def _add(self, dim: str, word: str, seen: set[tuple[str, str]], words: dict[str, list[Hit]],
             phrases: dict[str, list[tuple[str, Hit]]]) -> None:
        prefix = word.endswith("*")
        norm = " ".join(normalize(unicodedata.normalize("NFC", word.rstrip("*"))).split())
        if not norm or (dim, norm + "*" * prefix) in seen:
            return  # the same keyword twice in one dimension counts once
        seen.add((dim, norm + "*" * prefix))
        hit = (dim, word)
        if _substring_term(norm):
            needle = (" " + norm) if prefix else norm
            self._char_needles.setdefault(norm[0], []).append((needle, hit))
        elif prefix:
            self._stems.setdefault(norm[:STEM_KEY], []).append((" " + norm, hit))
        elif " " in norm:
            key = max(norm.split(" "), key=len)  # the longest word is the rarest, usually
            phrases.setdefault(key, []).append((f" {norm} ", hit))
        else:
            words.setdefault(norm, []).append(hit)

    def scan(self, padded: str) -> list[Hit]:
        """(dimension, keyword) pairs found in ``padded`` (the output of :func:`normalize`).
        Each keyword of a dimension appears at most once."""
        tokens = padded.split()
        hits: list[Hit] = []
        index = self._index
        for token in self._keys.intersection(tokens):
            found, phrases = index[token]
            if found:
                hits += found
            for needle, hit in phrases:
                if needle in padded:
                    hits.append(hit)
        ascii_text = padded.isascii()
        if self._stem_keys and not (ascii_text and not ENGLISH_MARKERS.isdisjoint(tokens)):
            stems = self._stems
            for key in self._stem_keys.intersection(map(_stem_key, tokens)):
                for needle, hit in stems[key]:
                    if needle in padded:
                        hits.append(hit)
        if (not ascii_text and not latin1(padded)
                and _SUBSTRING_SCRIPT.search(padded) is not None):
            chars = self._char_needles
            for char in self._char_keys.intersection(padded):
                for needle, hit in chars[char]:
                    if needle in padded:
                        hits.append(hit)
        return hits
