"""Sparse relative-index encoding and the ``.tc3d`` file (paper Section III-F).

A pruned, weight-shared layer is two symbol streams over its flattened weight (row-major,
i.e. output channel first): the *gap* before each surviving weight (8 bits for convolutions,
5 for the classifier, as the paper) and the weight's *centroid index*. A gap too long for its
bits is bridged by filler entries: a filler advances the position by ``2**bits - 1`` and
stands for a zero weight, so it carries a gap symbol but no centroid index. Both streams are
Huffman coded (:mod:`tc3d.modelfile.huffman`) with a table per layer and stream.

File layout (all integers little-endian)::

    magic   8 bytes   b"\\x89TC3D\\r\\n\\x1a"  (the \\x89 and \\r\\n catch text-mode copies)
    version u16, reserved u16, header length u32
    header  JSON: classes, model_config, clip (sampling + crop), block size, and for every
            layer and dense tensor where its sections lie in the payload; optionally the
            int8 calibration (:mod:`tc3d.infer.calibration`), which may be added later
    payload per layer: codebook (float32), code lengths (uint8) and block bit lengths (uint16)
            of both streams, the two coded streams; then every other tensor (BatchNorm,
            biases, fusion weights) raw, in its own dtype
    sha256  32 bytes over everything before it

A file is written to a temporary name and renamed, so a crash never leaves half a model.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tc3d.errors import TC3DError, first_line
from tc3d.io import atomic_write_bytes
from tc3d.modelfile import huffman

MAGIC = b"\x89TC3D\r\n\x1a"
VERSION = 1
GAP_BITS = {"conv": 8, "fc": 5}
_FIXED = struct.Struct("<HHI")  # version, reserved, header length
_DIGEST = 32


class Tc3dError(TC3DError, RuntimeError):
    """A ``.tc3d`` file that cannot be used; str(e) is one line. (Loading a model through
    :func:`tc3d.modelfile.checkpoint.load_model_file` reports it as a ``CheckpointError``.)"""


@dataclass
class SharedLayer:
    """A pruned, weight-shared layer: non-zero positions and the centroid index of each."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "conv" or "fc": picks the gap width
    codebook: np.ndarray  # (k,) float32
    positions: np.ndarray  # (nnz,) sorted flat positions of the surviving weights
    indices: np.ndarray  # (nnz,) centroid index of each

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def dense(self) -> np.ndarray:
        w = np.zeros(self.numel, np.float32)
        w[self.positions] = self.codebook[self.indices]
        return w.reshape(self.shape)


def positions_to_gaps(positions: np.ndarray, bits: int) -> np.ndarray:
    """Relative indices with fillers: symbol ``g < F`` = next weight ``g + 1`` further on,
    ``F = 2**bits - 1`` = a filler (skip F positions)."""
    filler = (1 << bits) - 1
    gaps = np.diff(np.asarray(positions, np.int64), prepend=-1)  # >= 1
    fillers = (gaps - 1) // filler  # fillers needed before each weight
    out = np.full(len(gaps) + int(fillers.sum()), filler, np.int64)
    out[np.cumsum(fillers + 1) - 1] = gaps - fillers * filler - 1
    return out


def gaps_to_positions(symbols: np.ndarray, bits: int) -> np.ndarray:
    filler = (1 << bits) - 1
    symbols = np.asarray(symbols, np.int64)
    advance = np.where(symbols == filler, filler, symbols + 1)
    return (np.cumsum(advance) - 1)[symbols != filler]


# ---------------------------------------------------------------------------------------------
# natural storage sizes of the stages before Huffman (the sizes the compression report lists)


def sparse_entries(positions: np.ndarray, kind: str) -> int:
    """Weights plus filler entries in the relative-index encoding."""
    return len(positions_to_gaps(positions, GAP_BITS[kind]))


def pruned_layer_bytes(positions: np.ndarray, kind: str) -> int:
    """fp32 value per surviving weight + packed relative indices (a filler stores a 0.0)."""
    entries = sparse_entries(positions, kind)
    return 4 * entries + math.ceil(entries * GAP_BITS[kind] / 8)


def quantized_layer_bytes(positions: np.ndarray, kind: str, k: int) -> int:
    """Codebook + packed ``log2 k``-bit centroid indices + packed relative indices."""
    entries = sparse_entries(positions, kind)
    index_bits = max(1, math.ceil(math.log2(k)))
    return 4 * k + math.ceil((len(positions) * index_bits + entries * GAP_BITS[kind]) / 8)


def compression_rate(n: int, k: int, b: int = 32) -> float:
    """The paper's Eq. 6: ``r = n·b / (n·log2 k + k·b)`` for n weights shared by k centroids."""
    return n * b / (n * math.log2(max(k, 2)) + k * b) if n else 0.0


# ---------------------------------------------------------------------------------------------
# writing


class _Payload:
    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> list[int]:
        self.parts.append(data)
        self.size += len(data)
        return [self.size - len(data), len(data)]


def _add_stream(payload: _Payload, enc: huffman.Encoded, alphabet: int) -> dict:
    # Bit length of every block but the last (at most 16 × BLOCK bits: fits uint16).
    bits = np.diff(enc.block_starts.astype(np.int64))
    return {
        "count": enc.count,
        "alphabet": alphabet,
        "lengths": payload.add(enc.lengths.astype(np.uint8).tobytes()),
        "blocks": payload.add(np.asarray(bits, np.uint16).tobytes()),
        "data": payload.add(enc.data),
    }


def write_tc3d(
    path: str | Path,
    meta: dict,
    layers: list[SharedLayer],
    dense: dict[str, torch.Tensor],
    block: int = huffman.BLOCK,
) -> dict:
    """Encode and write atomically; returns per-layer statistics (as ``inspect`` reports)."""
    payload = _Payload()
    layer_entries, stats = [], []
    for layer in layers:
        bits = GAP_BITS[layer.kind]
        k = len(layer.codebook)
        start = payload.size
        gaps = positions_to_gaps(layer.positions, bits)
        entry = {
            "name": layer.name,
            "shape": list(layer.shape),
            "kind": layer.kind,
            "k": k,
            "gap_bits": bits,
            "nnz": len(layer.positions),
            "codebook": payload.add(np.asarray(layer.codebook, "<f4").tobytes()),
            "index": _add_stream(payload, huffman.encode(layer.indices, k, block), k),
            "gap": _add_stream(payload, huffman.encode(gaps, 1 << bits, block), 1 << bits),
        }
        layer_entries.append(entry)
        stats.append(_layer_stats(entry, payload.size - start))
    dense_entries = []
    for name, t in dense.items():
        a = t.detach().cpu().contiguous().numpy()
        dense_entries.append(
            {
                "name": name,
                "shape": list(a.shape),
                "dtype": a.dtype.str,
                "data": payload.add(a.tobytes()),
            }
        )
    header = dict(meta, format="tc3d", block=block, layers=layer_entries, dense=dense_entries)
    head = json.dumps(header, separators=(",", ":")).encode()
    body = MAGIC + _FIXED.pack(VERSION, 0, len(head)) + head + b"".join(payload.parts)
    atomic_write_bytes(body + hashlib.sha256(body).digest(), path)
    return {"layers": stats, "file_bytes": len(body) + _DIGEST}


def _layer_stats(entry: dict, nbytes: int) -> dict:
    numel = math.prod(entry["shape"])
    return {
        "name": entry["name"],
        "shape": entry["shape"],
        "kind": entry["kind"],
        "nnz": entry["nnz"],
        "sparsity": 100.0 * (1 - entry["nnz"] / numel) if numel else 0.0,
        "k": entry["k"],
        "bits": math.ceil(math.log2(max(entry["k"], 2))),  # index bits before Huffman
        "bytes": nbytes,
        "bits_per_weight": 8 * nbytes / entry["nnz"] if entry["nnz"] else 0.0,
        "rate": compression_rate(entry["nnz"], entry["k"]),  # Eq. 6
    }


# ---------------------------------------------------------------------------------------------
# reading


@dataclass
class Tc3dFile:
    header: dict
    layers: list[SharedLayer]
    dense: dict[str, torch.Tensor]
    layer_stats: list[dict]
    file_bytes: int


def is_tc3d(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _section(payload: memoryview, span, what: str) -> memoryview:
    offset, length = span
    if offset < 0 or length < 0 or offset + length > len(payload):
        raise ValueError(f"{what} lies outside the file")
    return payload[offset : offset + length]


def _stream(payload: memoryview, d: dict, block: int) -> huffman.Encoded:
    bits = np.frombuffer(_section(payload, d["blocks"], "block table"), np.uint16)
    starts = np.concatenate([[0], np.cumsum(bits, dtype=np.int64)]) if d["count"] else bits
    lengths = np.frombuffer(_section(payload, d["lengths"], "code table"), np.uint8)
    if len(lengths) != d["alphabet"] or lengths.max(initial=0) > huffman.MAX_CODE_LENGTH:
        raise ValueError("bad code table")
    data = bytes(_section(payload, d["data"], "coded stream"))
    return huffman.Encoded(data, int(d["count"]), lengths, starts.astype(np.uint32))


def _verified(raw: bytes, path: Path) -> tuple[bytes, int]:
    """``(body, header length)`` of a whole file's bytes after every integrity check."""
    if raw[: len(MAGIC)] != MAGIC:
        raise Tc3dError(f"{path}: not a .tc3d compressed model (wrong magic bytes)")
    if len(raw) < len(MAGIC) + _FIXED.size + _DIGEST:
        raise Tc3dError(f"{path}: truncated .tc3d file ({len(raw)} bytes)")
    body, digest = raw[:-_DIGEST], raw[-_DIGEST:]
    version, _, head_len = _FIXED.unpack_from(body, len(MAGIC))
    if hashlib.sha256(body).digest() != digest:
        raise Tc3dError(f"{path}: checksum mismatch: the .tc3d file is truncated or corrupted")
    if version != VERSION:
        raise Tc3dError(f"{path}: .tc3d version {version}; this tc3d reads version {VERSION}")
    return body, head_len


def _read_raw(path: Path) -> bytes:
    if not path.is_file():
        raise Tc3dError(f"{path}: model file not found")
    return path.read_bytes()


def read_header(path: str | Path, raw: bytes | None = None) -> dict:
    """The verified JSON header alone (classes, model_config, clip, ...), nothing decoded;
    ``raw``: the file's bytes when already read."""
    path = Path(path)
    body, head_len = _verified(_read_raw(path) if raw is None else raw, path)
    start = len(MAGIC) + _FIXED.size
    try:
        return json.loads(body[start : start + head_len])
    except ValueError as e:
        raise Tc3dError(f"{path}: unreadable .tc3d header ({e})") from None


def with_header_fields(raw: bytes, fields: dict, path: str | Path = "") -> bytes:
    """A whole file's bytes with ``fields`` added to (or replaced in) its JSON header.

    Payload sections are addressed from the payload's start, so a longer header moves
    nothing; the version stays 1 and readers that do not know a field ignore it. This is how
    a file gets its int8 calibration after it was written (:mod:`tc3d.infer.quantize`).
    """
    body, head_len = _verified(raw, Path(path))
    start = len(MAGIC) + _FIXED.size
    header = dict(json.loads(body[start : start + head_len]), **fields)
    head = json.dumps(header, separators=(",", ":")).encode()
    new = MAGIC + _FIXED.pack(VERSION, 0, len(head)) + head + body[start + head_len :]
    return new + hashlib.sha256(new).digest()


def read_tc3d(path: str | Path) -> Tc3dFile:
    """Verify and decode a ``.tc3d`` file; any damage raises :class:`Tc3dError` (one line)."""
    path = Path(path)
    raw = _read_raw(path)
    body, head_len = _verified(raw, path)
    start = len(MAGIC) + _FIXED.size
    try:
        header = json.loads(body[start : start + head_len])
        payload = memoryview(body)[start + head_len :]
        block = int(header["block"])
        streams = []
        for e in header["layers"]:
            streams += [_stream(payload, e["index"], block), _stream(payload, e["gap"], block)]
        decoded = huffman.decode_many(streams, block)
        layers, stats = [], []
        for i, e in enumerate(header["layers"]):
            indices, gaps = decoded[2 * i], decoded[2 * i + 1]
            positions = gaps_to_positions(gaps, e["gap_bits"])
            codebook = np.frombuffer(_section(payload, e["codebook"], "codebook"), "<f4")
            shape = tuple(e["shape"])
            layer = SharedLayer(e["name"], shape, e["kind"], codebook, positions, indices)
            if len(positions) != e["nnz"] or len(indices) != e["nnz"]:
                raise ValueError(f"layer {e['name']} decodes to the wrong number of weights")
            if e["nnz"] and (positions[-1] >= layer.numel or indices.max() >= len(codebook)):
                raise ValueError(f"layer {e['name']} decodes outside its shape")
            layers.append(layer)
            sections = [e["codebook"]] + [e[s][p] for s in ("index", "gap") for p in
                                          ("lengths", "blocks", "data")]  # fmt: skip
            stats.append(_layer_stats(e, sum(length for _, length in sections)))
        dense = {}
        for d in header["dense"]:
            a = np.frombuffer(_section(payload, d["data"], d["name"]), np.dtype(d["dtype"]))
            dense[d["name"]] = torch.from_numpy(a.reshape(d["shape"]).copy())
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise Tc3dError(f"{path}: unreadable .tc3d contents ({first_line(e)})") from None
    return Tc3dFile(header, layers, dense, stats, len(raw))


def state_dict_from(contents: Tc3dFile) -> dict[str, torch.Tensor]:
    """Dense weights for ``load_state_dict``: the quantised values, bit for bit."""
    state = dict(contents.dense)
    for layer in contents.layers:
        state[layer.name] = torch.from_numpy(layer.dense())
    return state
