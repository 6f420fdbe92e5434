"""Canonical Huffman coding of integer symbol streams, with a fast vectorised decoder.

Paper Section III-F, Algorithm 1: the two least probable nodes are merged until one is left,
and each symbol's code length is its depth. We keep only the lengths and assign canonical
codes (shorter codes first, then by symbol), so a table is just one length per symbol.
Lengths are capped at ``MAX_CODE_LENGTH`` bits by flattening the counts and rebuilding: rare
symbols cost a bit more, in exchange every code fits one 16-bit table look-up.

Decoding a Huffman stream is sequential by nature, and a Python loop over millions of symbols
takes seconds. The encoder therefore records where every block of ``block`` symbols starts;
the decoder walks all blocks of all streams in lock step, one numpy gather per step, so the
loop runs ``block`` times whatever the stream lengths (about 0.3 s for the full-width model).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

MAX_CODE_LENGTH = 16
BLOCK = 1024  # symbols per block: a block holds at most 16384 bits, so uint16 lengths


@dataclass
class Encoded:
    """One coded stream: packed bits, symbol count, code lengths, bit offset of every block."""

    data: bytes
    count: int
    lengths: np.ndarray  # (alphabet,) uint8, 0 = unused symbol
    block_starts: np.ndarray  # (ceil(count / block),) uint32


def _tree_depths(counts: np.ndarray) -> np.ndarray:
    """Algorithm 1 on positive counts: repeatedly merge the two lightest nodes."""
    depths = np.zeros(len(counts), np.int64)
    heap = [(int(c), i, [i]) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    tie = len(counts)
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        depths[a + b] += 1  # every leaf below the new node is one level deeper
        heapq.heappush(heap, (w1 + w2, tie, a + b))
        tie += 1
    return depths


def code_lengths(counts: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code length of every symbol (0 for symbols that never occur)."""
    counts = np.asarray(counts, np.int64)
    lengths = np.zeros(len(counts), np.uint8)
    used = np.flatnonzero(counts)
    if len(used) == 1:
        lengths[used] = 1  # a one-symbol stream still needs one bit per symbol to be a code
    elif len(used) > 1:
        c = counts[used]
        depths = _tree_depths(c)
        while depths.max() > max_length:  # flatten the distribution until the codes fit
            c = (c + 1) // 2
            depths = _tree_depths(c)
        lengths[used] = depths
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code values (shorter first, ties by symbol), as unsigned ints."""
    codes = np.zeros(len(lengths), np.uint32)
    code, previous = 0, 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - previous
        previous = int(lengths[s])
        codes[s] = code
        code += 1
    return codes


def encode(symbols: np.ndarray, alphabet: int, block: int = BLOCK) -> Encoded:
    symbols = np.asarray(symbols, np.int64)
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ValueError(f"symbols must lie in [0, {alphabet})")
    lengths = code_lengths(np.bincount(symbols, minlength=alphabet))
    if len(symbols) == 0:
        return Encoded(b"", 0, lengths, np.zeros(0, np.uint32))
    codes = canonical_codes(lengths)
    n_bits = lengths[symbols].astype(np.int64)
    value = codes[symbols].astype(np.int64)
    ends = np.cumsum(n_bits)
    starts = ends - n_bits
    bits = np.zeros(int(ends[-1]), np.uint8)
    for j in range(int(n_bits.max())):  # bit j (from the top) of every code at once
        sel = n_bits > j
        bits[starts[sel] + j] = (value[sel] >> (n_bits[sel] - 1 - j)) & 1
    block_starts = starts[::block].astype(np.uint32)
    return Encoded(np.packbits(bits).tobytes(), len(symbols), lengths, block_starts)


def _lookup_table(lengths: np.ndarray) -> np.ndarray:
    """``2**16`` entries: for every 16-bit window, ``(code length << 16) | symbol``."""
    table = np.full(1 << MAX_CODE_LENGTH, (1 << 16) | 0, np.uint32)  # unused: 1 bit, symbol 0
    codes = canonical_codes(lengths)
    for s in np.flatnonzero(lengths):
        shift = MAX_CODE_LENGTH - int(lengths[s])
        lo = int(codes[s]) << shift
        table[lo : lo + (1 << shift)] = (int(lengths[s]) << 16) | int(s)
    return table


def decode_many(streams: list[Encoded], block: int = BLOCK) -> list[np.ndarray]:
    """Decode several streams at once (all their blocks advance in lock step)."""
    if any(len(s.lengths) > 1 << 16 for s in streams):
        raise ValueError("alphabets above 65536 symbols are not supported")
    chunks, bases, tables = [], [], []
    block_start, block_table, first_block = [], [], []
    offset = 0
    for i, s in enumerate(streams):
        expected = -(-s.count // block)
        if len(s.block_starts) != expected:
            raise ValueError("block index does not match the symbol count")
        first_block.append(len(block_start))
        block_start += [offset * 8 + int(b) for b in s.block_starts]
        block_table += [i] * expected
        bases.append(offset)
        chunks.append(s.data)
        offset += len(s.data)
        tables.append(_lookup_table(s.lengths) if s.count else np.zeros(0, np.uint32))
    first_block.append(len(block_start))
    if not block_start:
        return [np.zeros(0, np.int64) for _ in streams]
    # Garbage decoded past a stream's end is discarded; padding keeps those reads in bounds.
    # int32 throughout: half the memory traffic of int64 (streams stay far below 2**31 bits).
    buf = np.frombuffer(b"".join(chunks) + bytes(2 * block + 8), np.uint8).astype(np.int32)
    word = (buf[:-2] << 16) | (buf[1:-1] << 8) | buf[2:]  # the 24 bits starting at each byte
    pos = np.asarray(block_start, np.int32)
    table = np.concatenate([t if len(t) else np.zeros(1 << 16, np.uint32) for t in tables])
    table = table.astype(np.int32)
    base = np.asarray(block_table, np.int32) << MAX_CODE_LENGTH
    out = np.empty((block, len(pos)), np.int32)
    for step in range(block):
        entry = table[base + ((word[pos >> 3] >> (8 - (pos & 7))) & 0xFFFF)]
        out[step] = entry
        pos += entry >> 16
    out = (out.T & 0xFFFF).astype(np.int64)
    return [
        out[first_block[i] : first_block[i + 1]].reshape(-1)[: s.count]
        for i, s in enumerate(streams)
    ]


def decode(stream: Encoded, block: int = BLOCK) -> np.ndarray:
    return decode_many([stream], block)[0]


def entropy_bits(symbols: np.ndarray, alphabet: int) -> float:
    """Shannon bound in bits for the whole stream (what an ideal coder would reach)."""
    counts = np.bincount(np.asarray(symbols, np.int64), minlength=alphabet)
    p = counts[counts > 0] / max(1, counts.sum())
    return float(-(counts[counts > 0] * np.log2(p)).sum())
