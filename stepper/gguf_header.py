"""Read the header of a GGUF file (llama.cpp's format): its metadata and tensor table.

Layout, little-endian: the magic `GGUF`, a uint32 version (2 or 3), the tensor count
and the key/value count as uint64, the key/values, one info per tensor (name, number
of dimensions, each dimension, ggml type, offset), then the tensor data from the next
multiple of `general.alignment` (32 unless set). A string is a uint64 length and that
many UTF-8 bytes; an array is an element type, a uint64 count and the elements.

The file is memory-mapped. Arrays of numbers are read with one `np.frombuffer` each
and arrays of strings by walking their lengths, so a vocabulary of 128k tokens reads
in a fraction of a second. Every length and count is checked against the bytes left
before anything is read or allocated, so a corrupt or truncated file gives a
one-line `ModelFileError` naming the key or tensor, never a huge allocation.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from stepper.errors import ModelFileError, UnsupportedModelError

V = gguf.GGUFValueType
Q = gguf.GGMLQuantizationType
Buffer = bytes | mmap.mmap
READ = mmap.ACCESS_READ

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # ggml's GGML_MAX_DIMS
# Real files nest arrays one level at most; deeper nesting is taken for corruption,
# which also keeps the recursion far from Python's limit.
MAX_NESTING = 8
AGAIN = "download or convert it again"

_U32, _U64, _F32 = struct.Struct("<I"), struct.Struct("<Q"), struct.Struct("<f")
_SCALARS: dict[int, struct.Struct] = {
    V.UINT8: struct.Struct("<B"),
    V.INT8: struct.Struct("<b"),
    V.UINT16: struct.Struct("<H"),
    V.INT16: struct.Struct("<h"),
    V.UINT32: _U32,
    V.INT32: struct.Struct("<i"),
    V.UINT64: _U64,
    V.INT64: struct.Struct("<q"),
    V.FLOAT64: struct.Struct("<d"),
    V.BOOL: struct.Struct("<?"),
}
_DTYPES: dict[int, np.dtype] = {
    V.UINT8: np.dtype("<u1"),
    V.INT8: np.dtype("<i1"),
    V.UINT16: np.dtype("<u2"),
    V.INT16: np.dtype("<i2"),
    V.UINT32: np.dtype("<u4"),
    V.INT32: np.dtype("<i4"),
    V.UINT64: np.dtype("<u8"),
    V.INT64: np.dtype("<i8"),
    V.FLOAT32: np.dtype("<f4"),
    V.FLOAT64: np.dtype("<f8"),
    V.BOOL: np.dtype("<u1"),
}
# The fewest bytes a key/value (key length, type, a one-byte value) and a tensor
# info (name length, n_dims, type, offset) can take: bounds for the counts.
_MIN_KV, _MIN_TENSOR_INFO = 8 + 4 + 1, 8 + 4 + 4 + 8
_MIN_STRING, _MIN_ARRAY = 8, 4 + 8


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table, with where its data lies in the file."""

    name: str
    shape: tuple[int, ...]  # numpy order: [out, in] for a matrix (GGUF's ne reversed)
    ggml_type: Q
    offset: int  # absolute byte offset of the data in the file
    n_bytes: int

    @property
    def byte_shape(self) -> tuple[int, ...]:
        """The shape of the raw bytes: each row's bytes along the last axis."""
        block, type_size = gguf.GGML_QUANT_SIZES[self.ggml_type]
        *outer, row = self.shape or (1,)
        return (*outer, row // block * type_size)


@dataclass(frozen=True)
class GGUFFile:
    """A GGUF file's parsed header, with the file's bytes (a read-only memory map)."""

    path: Path
    version: int
    metadata: dict[str, object]
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int  # where the tensor data starts; tensor offsets are absolute
    buffer: Buffer

    def tensor_bytes(self, tensor: TensorInfo) -> np.ndarray:
        """A tensor's raw bytes: a zero-copy, read-only uint8 view of the file."""
        # shape: tensor.byte_shape
        flat = np.frombuffer(self.buffer, np.uint8, tensor.n_bytes, tensor.offset)
        return flat.reshape(tensor.byte_shape)


def read_gguf(path: Path) -> GGUFFile:
    """Memory-map a GGUF file and read its header."""
    try:
        with path.open("rb") as file:
            # mmap refuses an empty file; the parser names that case itself.
            empty = os.fstat(file.fileno()).st_size == 0
            buffer = b"" if empty else mmap.mmap(file.fileno(), 0, access=READ)
    except (OSError, ValueError) as error:  # ValueError: emptied since the check
        reason = getattr(error, "strerror", None) or error
        raise ModelFileError(
            f"{path}: cannot be read ({reason}); check the path and its permissions"
        ) from None
    return parse_gguf(buffer, path)


def parse_gguf(buffer: Buffer, path: Path) -> GGUFFile:
    """Read the header from a file's bytes; `path` is for the error messages."""
    cursor = _Cursor(buffer, path)
    version = _read_preamble(cursor)
    n_tensors, n_kv = cursor.u64(), cursor.u64()
    metadata = _read_metadata(cursor, n_kv)
    table = _read_tensor_table(cursor, n_tensors)
    alignment = _alignment(metadata, path)
    data_offset = -(-cursor.pos // alignment) * alignment
    tensors = [_place(cursor, entry, data_offset, alignment) for entry in table]
    return GGUFFile(path, version, metadata, tensors, alignment, data_offset, buffer)


class _Cursor:
    """A read position in the file's bytes; its errors name what it was reading."""

    def __init__(self, buffer: Buffer, path: Path) -> None:
        self.buffer, self.path = buffer, path
        self.pos, self.size = 0, len(buffer)
        self.where = "the header"  # what is being read, for the error messages

    def need(self, n: int) -> None:
        """Refuse to go on when fewer than `n` bytes are left."""
        if n > self.size - self.pos:
            raise ModelFileError(
                f"{self.path}: truncated or corrupt GGUF: {self.where} needs at "
                f"least {n} bytes from byte {self.pos}, past the end of the file's "
                f"{self.size} bytes; {AGAIN}"
            )

    def corrupt(self, problem: str) -> ModelFileError:
        """The error for a value that cannot be right."""
        return ModelFileError(
            f"{self.path}: corrupt GGUF: {self.where} {problem}; {AGAIN}"
        )

    def unpack(self, scalar: struct.Struct) -> Any:
        """One little-endian scalar."""
        self.need(scalar.size)
        (value,) = scalar.unpack_from(self.buffer, self.pos)
        self.pos += scalar.size
        return value

    def u32(self) -> int:
        """A uint32."""
        return int(self.unpack(_U32))

    def u64(self) -> int:
        """A uint64."""
        return int(self.unpack(_U64))

    def string(self) -> str:
        """A length-prefixed UTF-8 string."""
        n = self.u64()
        self.need(n)
        start, self.pos = self.pos, self.pos + n
        try:
            return str(self.buffer[start : self.pos], "utf-8")
        except UnicodeDecodeError as error:
            raise self.corrupt(
                f"is not valid UTF-8 ({error.reason} at byte {start + error.start})"
            ) from None

    def strings(self, count: int) -> list[str]:
        """`count` strings, walked in a tight loop (no per-string numpy objects)."""
        self.need(count * _MIN_STRING)
        buffer, pos, size, unpack = self.buffer, self.pos, self.size, _U64.unpack_from
        out: list[str] = []
        at = pos
        try:
            for _ in range(count):
                at = pos
                (n,) = unpack(buffer, pos)
                pos += 8 + n
                if pos > size:
                    raise ValueError
                out.append(str(buffer[pos - n : pos], "utf-8"))
        except (struct.error, ValueError):
            # Read the bad string again with the checked reader, for its message.
            self.pos, self.where = at, f"{self.where}, string {len(out)}"
            self.string()
            raise self.corrupt("could not be read") from None
        self.pos = pos
        return out

    def numbers(self, dtype: np.dtype, count: int) -> np.ndarray:
        """`count` numbers of `dtype`, one zero-copy view."""
        # shape: [count]
        self.need(count * dtype.itemsize)
        values = np.frombuffer(self.buffer, dtype, count, self.pos)
        self.pos += count * dtype.itemsize
        return values


def _read_preamble(cursor: _Cursor) -> int:
    """Check the magic and the version; return the version."""
    path, head = cursor.path, bytes(cursor.buffer[:4])
    if cursor.size == 0:
        raise ModelFileError(f"{path}: the file is empty; {AGAIN}")
    if head != MAGIC[: len(head)]:
        raise ModelFileError(
            f"{path}: not a GGUF file (its first bytes are not 'GGUF'); "
            "pass a .gguf model, a Hugging Face directory or a built-in name"
        )
    cursor.need(len(MAGIC))
    cursor.pos = len(MAGIC)
    version = cursor.u32()
    swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
    if version not in VERSIONS and swapped in (1, *VERSIONS):
        # A small version read byte-swapped: the file was written big-endian.
        raise UnsupportedModelError(
            f"{path}: header: the file is big-endian; convert it again on a "
            "little-endian machine"
        )
    if version not in VERSIONS:
        raise UnsupportedModelError(
            f"{path}: header: GGUF version {version}; stepper reads versions 2 and "
            "3, convert the model again with a current llama.cpp"
        )
    return version


def _read_metadata(cursor: _Cursor, count: int) -> dict[str, object]:
    """`count` key/values as plain Python values (float arrays as float32 numpy)."""
    cursor.where = f"the metadata ({count} keys)"
    cursor.need(count * _MIN_KV)
    metadata: dict[str, object] = {}
    for index in range(count):
        cursor.where = f"the key of metadata entry {index}"
        key = cursor.string()
        cursor.where = f"metadata key {key!r}"
        if key in metadata:
            raise cursor.corrupt("appears twice")
        metadata[key] = _value(cursor, cursor.u32(), depth=0)
    return metadata


def _value(cursor: _Cursor, vtype: int, depth: int) -> object:
    """One value of type `vtype`: a scalar, a string or an array."""
    if vtype == V.STRING:
        return cursor.string()
    if vtype == V.ARRAY:
        return _array(cursor, depth)
    if vtype == V.FLOAT32:
        # The shortest decimal that rounds to this float32 is what the converter
        # wrote (1e-05, not 9.999999747378752e-06).
        return float(str(np.float32(cursor.unpack(_F32))))
    scalar = _SCALARS.get(vtype)
    if scalar is None:
        raise cursor.corrupt(f"has unknown value type {vtype}")
    return cursor.unpack(scalar)


def _array(cursor: _Cursor, depth: int) -> object:
    """An array: list of str/int/bool, float32 numpy for floats, list for arrays."""
    if depth >= MAX_NESTING:
        raise cursor.corrupt(f"nests arrays more than {MAX_NESTING} deep")
    etype, count = cursor.u32(), cursor.u64()
    if etype == V.STRING:
        return cursor.strings(count)
    if etype == V.ARRAY:
        cursor.need(count * _MIN_ARRAY)
        return [_array(cursor, depth + 1) for _ in range(count)]
    dtype = _DTYPES.get(etype)
    if dtype is None:
        raise cursor.corrupt(f"is an array of unknown value type {etype}")
    values = cursor.numbers(dtype, count)
    if etype in (V.FLOAT32, V.FLOAT64):
        return values.astype(np.float32)  # a copy, so nothing keeps the map alive
    return (values != 0).tolist() if etype == V.BOOL else values.tolist()


_RawInfo = tuple[str, list[int], int, int]  # name, GGUF ne, ggml type, offset


def _read_tensor_table(cursor: _Cursor, count: int) -> list[_RawInfo]:
    """`count` tensor infos, as stored (dimensions in GGUF order, relative offset)."""
    cursor.where = f"the tensor table ({count} tensors)"
    cursor.need(count * _MIN_TENSOR_INFO)
    table = [_read_tensor_info(cursor, index) for index in range(count)]
    names = [name for name, *_ in table]
    if len(set(names)) < len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        cursor.where = f"tensor {duplicate!r}"
        raise cursor.corrupt("appears twice in the tensor table")
    return table


def _read_tensor_info(cursor: _Cursor, index: int) -> _RawInfo:
    """One tensor info: name, dimensions, ggml type and data offset."""
    cursor.where = f"the name of tensor {index}"
    name = cursor.string()
    cursor.where = f"tensor {name!r}"
    n_dims = cursor.u32()
    if n_dims > MAX_DIMS:
        raise cursor.corrupt(f"has {n_dims} dimensions, more than GGUF's {MAX_DIMS}")
    dims = [cursor.u64() for _ in range(n_dims)]
    return name, dims, cursor.u32(), cursor.u64()


def _alignment(metadata: dict[str, object], path: Path) -> int:
    """`general.alignment`, checked to be a power of two."""
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise ModelFileError(
            f"{path}: corrupt GGUF: metadata key 'general.alignment' is "
            f"{alignment!r}, not a power of two; {AGAIN}"
        )
    return alignment


def _place(
    cursor: _Cursor, entry: _RawInfo, data_offset: int, alignment: int
) -> TensorInfo:
    """A tensor info with its type, numpy shape, size and data checked in bounds."""
    name, dims, type_id, offset = entry
    cursor.where = f"tensor {name!r}"
    qtype = _ggml_type(cursor, type_id)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    row = dims[0] if dims else 1
    if row % block:
        raise cursor.corrupt(
            f"has rows of {row} values, not whole {qtype.name} blocks of {block}"
        )
    n_bytes = math.prod(dims) // block * type_size
    if offset % alignment:
        raise cursor.corrupt(f"starts at data offset {offset}, not {alignment}-aligned")
    start = data_offset + offset
    if start + n_bytes > cursor.size:
        raise ModelFileError(
            f"{cursor.path}: truncated or corrupt GGUF: the data of tensor {name!r} "
            f"(bytes {start} to {start + n_bytes}) runs past the end of the file's "
            f"{cursor.size} bytes; {AGAIN}"
        )
    return TensorInfo(name, tuple(reversed(dims)), qtype, start, n_bytes)


def _ggml_type(cursor: _Cursor, type_id: int) -> Q:
    """The ggml type of a type number, or an error naming the tensor."""
    try:
        return Q(type_id)
    except ValueError:
        raise UnsupportedModelError(
            f"{cursor.path}: {cursor.where} has ggml type number {type_id}, unknown "
            "to stepper's gguf package; re-quantize it with llama.cpp's "
            f"llama-quantize to Q8_0 or F16, or {AGAIN} if it is damaged"
        ) from None
