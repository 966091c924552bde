"""Ship a .tflite as one small file: weights entropy-coded, the rest compressed.

Introduced in 08_learned_compression. A model trained by
:mod:`course_lib.learned_compression` stores every weight as a whole number times a step
per tensor. :func:`encode` turns its float32 .tflite into one file:

- the .tflite with those weight bytes set to zero (the *skeleton*: graph, shapes, names),
  compressed with LZMA from Python's standard library;
- for each coded tensor: the index of its buffer, its step, and how often each whole
  number occurs (the coder's probability model);
- the whole numbers of every coded tensor, range-coded with asymmetric numeral systems
  (``constriction``'s ``AnsCoder`` and a ``Categorical`` model built from those counts).

:func:`decode` rebuilds the exact .tflite, byte for byte, so LiteRT runs it as it runs any
other file. Only NumPy, LZMA, ``constriction`` and LiteRT's flatbuffer schema are used: no
TensorFlow.
"""

from __future__ import annotations

import lzma
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np
from ai_edge_litert import schema_py_generated as schema  # the .tflite flatbuffer schema

MAGIC = b"LC1"
"""First bytes of a shipped file (format version 1)."""

_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
_MAX_SYMBOL = 2**15


def write_varint(n: int, out: bytearray) -> None:
    """Append a whole number >= 0 in LEB128 (7 bits a byte, high bit = more bytes follow)."""
    if n < 0:
        raise ValueError(f"a varint holds whole numbers >= 0, got {n}")
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a LEB128 number at ``pos``; return ``(value, position after it)``."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("the file ends inside a number: it is truncated or not a shipped file")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


def _unzigzag(z: int) -> int:
    return z // 2 if z % 2 == 0 else -(z + 1) // 2


def buffer_spans(content: bytes) -> list[tuple[int, int]]:
    """Return ``(start, length)`` in bytes of each flatbuffer Buffer's data (0, 0 when empty)."""
    model = schema.Model.GetRootAsModel(content, 0)
    spans = []
    for b in range(model.BuffersLength()):
        table = model.Buffers(b)._tab
        field = table.Offset(4)  # Buffer.data
        if field == 0:
            spans.append((0, 0))
        else:
            spans.append((table.Vector(field), table.VectorLen(field)))
    return spans


def float32_buffers(content: bytes) -> dict[int, tuple[int, ...]]:
    """Return ``{buffer index: shape}`` for the float32 constants stored inside the file."""
    model = schema.Model.GetRootAsModel(content, 0)
    spans = buffer_spans(content)
    found: dict[int, tuple[int, ...]] = {}
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            index = tensor.Buffer()
            if tensor.Type() == schema.TensorType.FLOAT32 and spans[index][1] > 0:
                found[index] = tuple(int(d) for d in tensor.ShapeAsNumpy())
    return found


def dequantize(symbols: np.ndarray, step: float) -> np.ndarray:
    """Whole numbers times a step, in float32: the exact values a coded tensor stores.

    One float32 multiplication, so the encoder, the training code and the decoder agree to
    the bit (and a zero is always ``+0.0``).
    """
    return np.float32(step) * np.asarray(symbols, np.int32).astype(np.float32)


def as_symbols(values: np.ndarray, step: float) -> np.ndarray | None:
    """Return the whole numbers ``k`` with ``dequantize(k, step)`` bitwise equal to
    ``values``, or None when no such numbers exist (the tensor is not on this step's grid)."""
    values = np.asarray(values, np.float32)
    if not (np.isfinite(step) and step > 0) or not np.all(np.isfinite(values)):
        return None
    k = np.rint(values / np.float32(step))
    if k.size and np.max(np.abs(k)) >= _MAX_SYMBOL:
        return None
    symbols = k.astype(np.int32)
    if not np.array_equal(dequantize(symbols, step).view(np.uint32), values.view(np.uint32)):
        return None
    return symbols


def _probabilities(counts: np.ndarray) -> np.ndarray:
    return counts.astype(np.float64) / float(counts.sum())


@dataclass
class Coded:
    """One coded tensor: where it goes in the .tflite and how its numbers are distributed."""

    buffer: int
    step: float
    low: int  # the smallest whole number
    counts: np.ndarray  # counts[i]: how often low + i occurs

    @property
    def size(self) -> int:
        return int(self.counts.sum())

    def model(self) -> constriction.stream.model.Categorical:
        return constriction.stream.model.Categorical(_probabilities(self.counts), perfect=False)


@dataclass
class ShippedParts:
    """Byte counts of a shipped file's parts (they add up to ``total``)."""

    magic: int
    skeleton: int
    tables: int
    stream: int
    coded_tensors: int
    coded_values: int

    @property
    def total(self) -> int:
        return self.magic + self.skeleton + self.tables + self.stream


def encode(content: bytes | str | Path, steps: Sequence[float]) -> bytes:
    """Encode a float32 .tflite whose weights are whole multiples of the given steps.

    Each float32 constant is coded when one of ``steps`` reproduces it bit for bit
    (:func:`as_symbols`); any other constant stays, as it is, in the LZMA-compressed
    skeleton.

    Args:
        content: the .tflite (bytes or path).
        steps: candidate quantization steps (e.g. one per weight tensor, from
            :func:`course_lib.learned_compression.export`).

    Raises:
        ValueError: not a .tflite, a step that is not a positive finite number, or no
            constant matched any step (nothing would be entropy-coded).
    """
    if isinstance(content, (str, Path)):
        content = Path(content).read_bytes()
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ValueError("encode expects a .tflite flatbuffer (no TFL3 identifier found)")
    steps = [float(s) for s in steps]
    if not steps or not all(np.isfinite(s) and s > 0 for s in steps):
        raise ValueError(f"steps must be positive finite numbers, got {steps}")
    spans = buffer_spans(content)
    skeleton = bytearray(content)
    coded: list[tuple[Coded, np.ndarray]] = []
    for index in sorted(float32_buffers(content)):
        start, length = spans[index]
        values = np.frombuffer(content, np.float32, length // 4, start)
        for step in steps:
            symbols = as_symbols(values, step)
            if symbols is not None:
                break
        else:
            continue
        low = int(symbols.min())
        counts = np.bincount(symbols - low)
        coded.append((Coded(index, step, low, counts), symbols))
        skeleton[start : start + length] = bytes(length)
    if not coded:
        raise ValueError("no float32 constant is a whole multiple of any step: nothing to code")

    coder = constriction.stream.stack.AnsCoder()
    for tensor, symbols in reversed(coded):  # a stack: the first tensor is decoded first
        if len(tensor.counts) > 1:  # a tensor of one repeated value costs no bits
            coder.encode_reverse((symbols - tensor.low).astype(np.int32), tensor.model())
    words = coder.get_compressed().astype("<u4")

    out = bytearray(MAGIC)
    packed = lzma.compress(bytes(skeleton), format=lzma.FORMAT_RAW, filters=_FILTERS)
    write_varint(len(packed), out)
    out += packed
    write_varint(len(coded), out)
    for tensor, _ in coded:
        write_varint(tensor.buffer, out)
        out += struct.pack("<f", tensor.step)
        write_varint(_zigzag(tensor.low), out)
        write_varint(len(tensor.counts), out)
        for c in tensor.counts:
            write_varint(int(c), out)
    write_varint(len(words), out)
    out += words.tobytes()
    return bytes(out)


def _parse(shipped: bytes) -> tuple[bytes, list[Coded], np.ndarray, ShippedParts]:
    if not shipped.startswith(MAGIC):
        raise ValueError(f"not a shipped model: it does not start with {MAGIC!r}")
    pos = len(MAGIC)
    size, pos = read_varint(shipped, pos)
    packed = shipped[pos : pos + size]
    if len(packed) != size:
        raise ValueError("the file ends inside the skeleton: it is truncated")
    skeleton = lzma.decompress(packed, format=lzma.FORMAT_RAW, filters=_FILTERS)
    pos += size
    tables_start = pos
    n, pos = read_varint(shipped, pos)
    tensors = []
    for _ in range(n):
        buffer, pos = read_varint(shipped, pos)
        (step,) = struct.unpack_from("<f", shipped, pos)
        pos += 4
        z, pos = read_varint(shipped, pos)
        alphabet, pos = read_varint(shipped, pos)
        counts = np.zeros(alphabet, np.int64)
        for i in range(alphabet):
            counts[i], pos = read_varint(shipped, pos)
        tensors.append(Coded(buffer, step, _unzigzag(z), counts))
    n_words, pos = read_varint(shipped, pos)
    tables = pos - tables_start
    if len(shipped) != pos + 4 * n_words:
        raise ValueError(
            f"the coded stream should be {4 * n_words} bytes, found {len(shipped) - pos}: "
            "the file is truncated or has trailing bytes"
        )
    words = np.frombuffer(shipped, "<u4", n_words, pos).astype(np.uint32)
    parts = ShippedParts(
        len(MAGIC),
        len(shipped) - len(MAGIC) - tables - 4 * n_words,
        tables,
        4 * n_words,
        len(tensors),
        sum(t.size for t in tensors),
    )
    return skeleton, tensors, words, parts


def decode(shipped: bytes | str | Path) -> bytes:
    """Rebuild the .tflite from a shipped file made by :func:`encode` (byte-identical)."""
    if isinstance(shipped, (str, Path)):
        shipped = Path(shipped).read_bytes()
    skeleton, tensors, words, _ = _parse(shipped)
    content = bytearray(skeleton)
    spans = buffer_spans(skeleton)
    coder = constriction.stream.stack.AnsCoder(words)
    for tensor in tensors:
        start, length = spans[tensor.buffer]
        if length != 4 * tensor.size:
            raise ValueError(
                f"buffer {tensor.buffer} holds {length // 4} values, the table says {tensor.size}"
            )
        if len(tensor.counts) > 1:
            symbols = coder.decode(tensor.model(), tensor.size).astype(np.int32) + tensor.low
        else:
            symbols = np.full(tensor.size, tensor.low, np.int32)
        content[start : start + length] = dequantize(symbols, tensor.step).tobytes()
    return bytes(content)


def parts(shipped: bytes | str | Path) -> ShippedParts:
    """Where a shipped file's bytes go: skeleton, tables (steps and counts), coded stream."""
    if isinstance(shipped, (str, Path)):
        shipped = Path(shipped).read_bytes()
    return _parse(shipped)[3]


def entropy_bytes(symbols: np.ndarray) -> float:
    """The empirical entropy of a tensor's whole numbers, in bytes: what an ideal coder with
    the tensor's own frequencies needs (the tables that describe them not counted)."""
    _, counts = np.unique(np.asarray(symbols).ravel(), return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum() / 8) + 0.0  # + 0.0: never print -0
