"""The classifier's weights in memory: packed rows and a bucket index that fit in a CPU cache.

Only about 7% of the 2**20 feature buckets have weights. A table indexed by bucket (10 MB) made
every look-up a likely cache miss, and those misses were most of the scoring time. Instead:

- ``rows``: the weights of the buckets that have any, in ascending bucket order, ROW bytes each:
  per column (four tiers, then the agentic head) the quantised weight as a little-endian 16-bit
  number offset by ZERO (about 0.7 MB for 72k buckets);
- ``index``: 8 bytes per block of 32 buckets (256 KB): a little-endian 32-bit mask of the
  block's buckets that have a row, then the number of rows before the block. A bucket's row is
  that number plus the set bits below its own (a population count): two nearby reads.

Look-ups read bytes, which mypyc compiles to native integer loads; sums stay integers
(offset and scaled once by the caller), so the result does not depend on the order of the
keys.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Final

from . import ngrams
from .settings import TIERS

if TYPE_CHECKING:  # mypyc compiles i64 to a C int64_t; plain Python never evaluates it
    from mypy_extensions import i64

COLUMNS: Final = len(TIERS) + 1  # one weight per tier, then the agentic head's
ROW: Final = 2 * COLUMNS  # bytes per row
ZERO: Final = 32768  # the stored value of weight 0
BLOCK_BITS: Final = 5  # 32 buckets per index block
BLOCK: Final = 8  # index bytes per block


def little(values: array) -> bytes:
    """The items of ``values`` as little-endian bytes (whatever this machine's order)."""
    if array("H", [1]).tobytes()[0] != 1:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


# number of set bits in each byte value
_POPCOUNT = bytes(bin(value).count("1") for value in range(256))


def pack_index(buckets: list[int]) -> bytes:
    """The index of ``buckets`` (ascending, distinct, each below ngrams.BUCKETS). Built with
    whole-array operations (Router() builds it once; a loop per block took ~20 ms)."""
    bits = bytearray(ngrams.BUCKETS >> 3)  # bucket k is bit k % 8 of byte k // 8
    for key in buckets:
        bits[key >> 3] |= 1 << (key & 7)
    # the bytes of each block's 32 buckets, read as a little-endian number, are its mask
    masks = array("I")
    if masks.itemsize != 4:
        raise RuntimeError("unexpected C integer sizes")
    masks.frombytes(bytes(bits))
    per_byte = array("I")
    per_byte.frombytes(bytes(bits).translate(_POPCOUNT))  # 4 byte popcounts per item
    if array("H", [1]).tobytes()[0] != 1:
        masks.byteswap()
    packed = array("I", bytes(8 * len(masks)))
    packed[0::2] = masks
    before = 0
    ranks = []
    for counts in per_byte:  # the sum of the four byte counts is in the top byte
        ranks.append(before)
        before += ((counts * 0x01010101) & 0xFFFFFFFF) >> 24
    packed[1::2] = array("I", ranks)
    return little(packed)


def row_at(index: bytes, key: i64) -> i64:
    """Where bucket ``key``'s row starts in ``rows``, or -1 when the bucket has no weights."""
    at = (key >> BLOCK_BITS) * BLOCK
    mask = _u32(index, at)
    bit = key & 31
    if (mask >> bit) & 1 == 0:
        return -1
    below = mask & ((1 << bit) - 1)  # population count of the buckets before it (SWAR)
    below = below - ((below >> 1) & 0x55555555)
    below = (below & 0x33333333) + ((below >> 2) & 0x33333333)
    below = (below + (below >> 4)) & 0x0F0F0F0F
    below = ((below * 0x01010101) & 0xFFFFFFFF) >> 24
    return ROW * (_u32(index, at + 4) + below)


def _u32(data: bytes, at: i64) -> i64:
    """The little-endian 32-bit number at ``data[at:at + 4]``."""
    b0: i64 = data[at]  # typed one by one: shifts of native integers, not of int objects
    b1: i64 = data[at + 1]
    b2: i64 = data[at + 2]
    b3: i64 = data[at + 3]
    return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)


def stored(rows: bytes, at: i64, column: i64) -> i64:
    """The stored (offset) weight of ``column`` in the row at ``at``; ZERO when ``at`` is -1."""
    if at < 0:
        return ZERO
    low: i64 = rows[at + 2 * column]
    high: i64 = rows[at + 2 * column + 1]
    return low | (high << 8)


# In the two loops below, each column's low and high bytes are summed apart (typed i64, so
# mypyc adds native integers) and combined at the end: the same totals, fewer operations.

def key_sums(index: bytes, rows: bytes, keys: list[int]) -> list[i64]:
    """The stored weights of the buckets ``keys`` summed per column (one per occurrence), then
    how many of them have a row: a column's weight sum is (sum - ZERO * count) * scale."""
    a0: i64 = 0
    a1: i64 = 0
    a2: i64 = 0
    a3: i64 = 0
    a4: i64 = 0
    b0: i64 = 0
    b1: i64 = 0
    b2: i64 = 0
    b3: i64 = 0
    b4: i64 = 0
    count: i64 = 0
    for key in keys:
        at = row_at(index, key)
        if at >= 0:
            a0 += rows[at]
            b0 += rows[at + 1]
            a1 += rows[at + 2]
            b1 += rows[at + 3]
            a2 += rows[at + 4]
            b2 += rows[at + 5]
            a3 += rows[at + 6]
            b3 += rows[at + 7]
            a4 += rows[at + 8]
            b4 += rows[at + 9]
            count += 1
    return [a0 + (b0 << 8), a1 + (b1 << 8), a2 + (b2 << 8), a3 + (b3 << 8), a4 + (b4 << 8),
            count]


def char_sums(index: bytes, rows: bytes, text: str, low: i64, high: i64,
              seed: i64) -> list[i64]:
    """:func:`key_sums` of the buckets :func:`ngrams.add_chars` gives ``text``, hashed and
    looked up in one pass (no list of buckets). :func:`ngrams.code_at` and :func:`row_at` are
    written out inline: this loop runs a few hundred times per request."""
    codes, wide = ngrams.code_points(text)
    width: i64 = wide
    size: i64 = len(codes) // width
    a0: i64 = 0
    a1: i64 = 0
    a2: i64 = 0
    a3: i64 = 0
    a4: i64 = 0
    b0: i64 = 0
    b1: i64 = 0
    b2: i64 = 0
    b3: i64 = 0
    b4: i64 = 0
    count: i64 = 0
    start: i64 = 0
    while start + low <= size:
        stop = start + high
        if stop > size:
            stop = size
        h: i64 = seed
        position = start
        while position < stop:
            if width == 1:
                code: i64 = codes[position]
            else:
                code = _u32(codes, 4 * position)
            h = ((h ^ code) * ngrams.FNV_PRIME) & 0xFFFFFFFF
            position += 1
            if position - start < low:
                continue
            key = h & ngrams.MASK
            at = (key >> BLOCK_BITS) * BLOCK
            m0: i64 = index[at]  # _u32(index, at), inline
            m1: i64 = index[at + 1]
            m2: i64 = index[at + 2]
            m3: i64 = index[at + 3]
            mask = m0 | (m1 << 8) | (m2 << 16) | (m3 << 24)
            bit = key & 31
            if (mask >> bit) & 1 == 0:
                continue
            below = mask & ((1 << bit) - 1)
            below = below - ((below >> 1) & 0x55555555)
            below = (below & 0x33333333) + ((below >> 2) & 0x33333333)
            below = (below + (below >> 4)) & 0x0F0F0F0F
            below = ((below * 0x01010101) & 0xFFFFFFFF) >> 24
            r0: i64 = index[at + 4]
            r1: i64 = index[at + 5]
            r2: i64 = index[at + 6]
            r3: i64 = index[at + 7]
            row = ROW * ((r0 | (r1 << 8) | (r2 << 16) | (r3 << 24)) + below)
            a0 += rows[row]
            b0 += rows[row + 1]
            a1 += rows[row + 2]
            b1 += rows[row + 3]
            a2 += rows[row + 4]
            b2 += rows[row + 5]
            a3 += rows[row + 6]
            b3 += rows[row + 7]
            a4 += rows[row + 8]
            b4 += rows[row + 9]
            count += 1
        start += 1
    return [a0 + (b0 << 8), a1 + (b1 << 8), a2 + (b2 << 8), a3 + (b3 << 8), a4 + (b4 << 8),
            count]
