"""stepper's own GGUF header reader: agreement with `gguf.GGUFReader`, and fuzzing.

Every key and every tensor (name, shape, type, offset, bytes) of the shipped GGUF
files and of files written here must read as `gguf.GGUFReader` reads them. Corrupt
input (truncated, bytes flipped, absurd lengths and counts) may only give a one-line
`ModelFileError` or `UnsupportedModelError`, quickly and without big allocations.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
from functools import cache
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from gguf_writer import STORIES, gpt2_gguf, llama_gguf

from stepper.errors import ModelFileError, UnsupportedModelError
from stepper.gguf_file import dequantize, read_weights
from stepper.gguf_header import GGUFFile, parse_gguf, read_gguf
from stepper.load import load_model

Q, V = gguf.GGMLQuantizationType, gguf.GGUFValueType
DATA = Path(__file__).parent / "data"
GPT2_VOCAB = DATA / "gpt2" / "ggml-vocab-gpt-2.gguf"
SHIPPED = {
    "stories260K": STORIES,
    "babyllama": DATA / "babyllama" / "babyllama-tok105.gguf",
    "gpt2-vocab": GPT2_VOCAB,
    "phi3-vocab": DATA / "phi3" / "ggml-vocab-phi-3.gguf",
}
BAD_FILE = (ModelFileError, UnsupportedModelError)
HUGE = 2**63


@cache
def reference(path: Path) -> gguf.GGUFReader:
    """gguf's own reader of a file, once per file (GPT-2's vocabulary takes seconds)."""
    return gguf.GGUFReader(path)


def reference_metadata(reader: gguf.GGUFReader) -> dict[str, object]:
    """The reader's fields as stepper has always handed them on."""
    metadata: dict[str, object] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):  # the reader's own header entries
            continue
        value = field.contents()
        if field.types[0] == V.ARRAY and field.types[-1] in (V.FLOAT32, V.FLOAT64):
            value = np.asarray(value, dtype=np.float32)
        elif field.types == [V.FLOAT32]:
            value = np.float32(value)
        metadata[key] = value
    return metadata


def assert_same_value(key: str, ours: object, theirs: object) -> None:
    """One metadata value equals the reference's, type included."""
    if isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == np.float32, key
        assert ours.tobytes() == theirs.tobytes(), key
    elif isinstance(theirs, np.float32):
        # Ours is the shortest decimal of the same float32.
        assert type(ours) is float and np.float32(ours) == theirs, key
        assert float(str(theirs)) == ours, key
    elif isinstance(theirs, list):
        assert type(ours) is list and ours == theirs, key
        assert [type(v) for v in ours] == [type(v) for v in theirs], key
    else:
        assert type(ours) is type(theirs) and ours == theirs, key


def assert_agrees(path: Path) -> GGUFFile:
    """Our reading of `path` agrees with GGUFReader on every key and tensor."""
    ours, theirs = read_gguf(path), reference(path)
    want = reference_metadata(theirs)
    assert list(ours.metadata) == list(want)
    for key, value in want.items():
        assert_same_value(key, ours.metadata[key], value)
    assert ours.data_offset == theirs.data_offset
    assert [t.name for t in ours.tensors] == [t.name for t in theirs.tensors]
    for mine, their in zip(ours.tensors, theirs.tensors, strict=True):
        assert mine.shape == tuple(reversed(their.shape.tolist())), mine.name
        assert mine.ggml_type == their.tensor_type, mine.name
        assert (mine.offset, mine.n_bytes) == (their.data_offset, their.n_bytes)
        data = ours.tensor_bytes(mine)
        assert data.tobytes() == their.data.tobytes(), mine.name
        assert not data.flags.writeable, "a view of the read-only map"
    return ours


@pytest.mark.parametrize("path", SHIPPED.values(), ids=SHIPPED.keys())
def test_shipped_files_agree_with_gguf_reader(path: Path) -> None:
    """Every key and tensor of each shipped GGUF reads as GGUFReader reads it."""
    assert_agrees(path)


WRITTEN = [(llama_gguf, q) for q in (Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0)]
WRITTEN += [(gpt2_gguf, Q.Q8_0)]


@pytest.mark.parametrize(
    "write, qtype", WRITTEN, ids=[f"{w.__name__}-{q.name}" for w, q in WRITTEN]
)
def test_written_files_agree_with_gguf_reader(write, qtype, tmp_path: Path) -> None:
    """Files written by tests/gguf_writer.py in quantized types agree too."""
    path = tmp_path / "w.gguf"
    stored = write(path, qtype)
    ours = assert_agrees(path)
    assert {t.name: t.ggml_type for t in ours.tensors} == stored


def write_every_kind(path: Path) -> None:
    """A GGUF with every value type, 64-byte alignment and every tensor type."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_custom_alignment(64)
    for vtype, value in SCALARS.items():
        writer.add_key_value(f"scalar.{vtype.name}", value, vtype)
    for vtype, values in ARRAYS.items():
        writer.add_key_value(f"array.{vtype.name}", values, V.ARRAY, sub_type=vtype)
    writer.add_string("unicode", "llama 🦙 ñ 世界")
    x = rng.normal(size=(4, 256)).astype(np.float32)
    writer.add_tensor("f32.3d", x.reshape(2, 2, 256))
    writer.add_tensor("f16", x.astype(np.float16))
    writer.add_tensor("vector", x[0])
    for qtype in (Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q5_0):
        writer.add_tensor(qtype.name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    for qtype in (Q.Q4_K, Q.Q6_K):  # random blocks: any bytes are a valid block
        size = gguf.GGML_QUANT_SIZES[qtype][1]
        blocks = rng.integers(0, 256, (4, size), dtype=np.uint8)
        writer.add_tensor(qtype.name, blocks, raw_dtype=qtype)
    finish(writer)


def finish(writer: gguf.GGUFWriter) -> None:
    """Write out a GGUFWriter's header, key/values and tensors."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# Values of each type, extremes first; the scalar keys take the first of each.
ARRAYS: dict[gguf.GGUFValueType, list[Any]] = {
    V.UINT8: [255, 0],
    V.INT8: [-128, 127],
    V.UINT16: [65535, 1],
    V.INT16: [-32768, 2],
    V.UINT32: [2**32 - 1, 3],
    V.INT32: [-(2**31), 4],
    V.UINT64: [2**64 - 1, 0],
    V.INT64: [-(2**63), 5],
    V.FLOAT32: [1e-5, -0.5, np.inf],
    V.FLOAT64: [0.1, -2.5],
    V.BOOL: [True, False, True],
    V.STRING: ["", "a b", "🦙", "x" * 300],
}
SCALARS = {vtype: values[0] for vtype, values in ARRAYS.items()}


def test_every_value_and_tensor_type_agrees(tmp_path: Path) -> None:
    """Scalars and arrays of every value type; every tensor type; alignment 64."""
    path = tmp_path / "every.gguf"
    write_every_kind(path)
    ours = assert_agrees(path)
    assert ours.alignment == 64 and ours.data_offset % 64 == 0
    assert ours.metadata["scalar.FLOAT32"] == 1e-5
    assert ours.metadata["scalar.UINT64"] == 2**64 - 1
    assert ours.metadata["unicode"] == "llama 🦙 ñ 世界"
    assert next(t for t in ours.tensors if t.name == "f32.3d").shape == (2, 2, 256)


def test_every_supported_type_dequantizes_as_gguf_does(tmp_path: Path) -> None:
    """Our zero-copy bytes, dequantized, equal gguf's dequantization of its own view."""
    path = tmp_path / "every.gguf"
    write_every_kind(path)
    ours, theirs = read_gguf(path), reference(path)
    for mine, their in zip(ours.tensors, theirs.tensors, strict=True):
        if mine.ggml_type == Q.Q5_0:
            with pytest.raises(UnsupportedModelError) as error:
                dequantize(ours, mine, path)
            assert "'Q5_0'" in str(error.value) and "Q5_0;" in str(error.value)
            continue
        got = dequantize(ours, mine, path)
        want = gguf.quants.dequantize(their.data, their.tensor_type)
        assert got.dtype == np.float32 and got.flags.c_contiguous, mine.name
        assert got.shape == mine.shape, mine.name
        np.testing.assert_array_equal(got, want.reshape(mine.shape), mine.name)


def test_f32_weights_stay_views_of_the_map() -> None:
    """F32 tensors are not copied: they are read-only views of the file's bytes."""
    weights, _ = read_weights(read_gguf(STORIES), STORIES)
    embd = weights["token_embd.weight"]
    assert embd.shape == (512, 64) and not embd.flags.writeable
    assert not embd.flags.owndata


def test_gpt2_vocabulary_reads_quickly() -> None:
    """GPT-2's 50,257 tokens and 50,000 merges read in well under a second."""
    start = time.perf_counter()
    metadata = read_gguf(GPT2_VOCAB).metadata
    elapsed = time.perf_counter() - start
    assert len(metadata["tokenizer.ggml.merges"]) == 50_000  # type: ignore[arg-type]
    assert elapsed < 1.0, f"{elapsed:.2f} s"


# ---- hand-built headers -------------------------------------------------------


def gguf_bytes(kvs: list[bytes], version: int = 3, n_tensors: int = 0) -> bytes:
    """A GGUF header with these encoded key/values and no tensor infos."""
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs)) + b"".join(kvs)


def text(value: str) -> bytes:
    """A GGUF string: uint64 length and UTF-8 bytes."""
    raw = value.encode()
    return struct.pack("<Q", len(raw)) + raw


def array(etype: int, count: int, elements: bytes) -> bytes:
    """An array value without its key and type tag: element type, count, elements."""
    return struct.pack("<IQ", etype, count) + elements


def kv(key: str | bytes, vtype: int, value: bytes) -> bytes:
    """One encoded key/value; a key given as bytes is written as they are."""
    raw = key if isinstance(key, bytes) else key.encode()
    return struct.pack("<Q", len(raw)) + raw + struct.pack("<I", vtype) + value


def test_version_2_reads_like_version_3() -> None:
    """GGUF v2 has the same layout for what stepper reads."""
    data = bytearray(STORIES.read_bytes())
    data[4:8] = struct.pack("<I", 2)
    parsed, v3 = parse_gguf(bytes(data), STORIES), read_gguf(STORIES)
    assert (parsed.version, v3.version) == (2, 3)
    assert list(parsed.metadata) == list(v3.metadata)
    tokens = "tokenizer.ggml.tokens"
    assert parsed.metadata[tokens] == v3.metadata[tokens]
    assert parsed.tensors == v3.tensors


def test_nested_and_empty_arrays_keep_their_structure() -> None:
    """Arrays of arrays stay nested (GGUFReader flattens them); empty arrays read."""
    inner = array(V.INT32, 2, struct.pack("<ii", 1, 2)) + array(V.INT32, 0, b"")
    data = gguf_bytes(
        [
            kv("nested", V.ARRAY, array(V.ARRAY, 2, inner)),
            kv("empty.strings", V.ARRAY, array(V.STRING, 0, b"")),
            kv("empty.floats", V.ARRAY, array(V.FLOAT32, 0, b"")),
        ]
    )
    metadata = parse_gguf(data, Path("n.gguf")).metadata
    assert metadata["nested"] == [[1, 2], []]
    assert metadata["empty.strings"] == []
    floats = metadata["empty.floats"]
    assert isinstance(floats, np.ndarray) and floats.dtype == np.float32
    assert floats.size == 0


def test_big_endian_file_is_refused(tmp_path: Path) -> None:
    """A big-endian GGUF (version field byte-swapped) says so in one line."""
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_tensor("w", np.ones((2, 2), np.float32))
    finish(writer)
    with pytest.raises(UnsupportedModelError) as error:
        load_model(path)
    assert_one_line(error.value, path, "big-endian")


def assert_one_line(error: Exception, path: Path, *parts: str) -> None:
    """An error message is one line that names the file and every part."""
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# ---- corrupt headers ----------------------------------------------------------


@cache
def stories_bytes() -> bytes:
    """stories260K.gguf, whose first key is `tokenizer.ggml.tokens`."""
    data = STORIES.read_bytes()
    assert data[32:53] == b"tokenizer.ggml.tokens"
    return data


def patched(offset: int, fmt: str, value: int) -> bytes:
    """A copy of stories260K with one number overwritten."""
    out = bytearray(stories_bytes())
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def after(name: str) -> int:
    """The offset just past the GGUF string `name` (a key or tensor name)."""
    raw = name.encode()
    return stories_bytes().index(struct.pack("<Q", len(raw)) + raw) + 8 + len(raw)


SCORES_COUNT = after("tokenizer.ggml.scores") + 8  # past value and element types
EMBD = after("token_embd.weight")  # its n_dims; dims, type and offset follow


# (what is patched, offset, struct format, value, words the message must hold)
ABSURD = [
    ("tensor count", 8, "<Q", HUGE, ["tensor table", "truncated"]),
    ("key/value count", 16, "<Q", HUGE, ["metadata", "truncated"]),
    ("first key length", 24, "<Q", HUGE, ["metadata entry 0", "truncated"]),
    ("value type", 53, "<I", 99, ["'tokenizer.ggml.tokens'", "unknown value type"]),
    ("element type", 57, "<I", 99, ["'tokenizer.ggml.tokens'", "unknown value type"]),
    ("string count", 61, "<Q", HUGE, ["'tokenizer.ggml.tokens'", "truncated"]),
    ("string count", 61, "<Q", 10**6, ["'tokenizer.ggml.tokens'", "truncated"]),
    ("string length", 69, "<Q", HUGE, ["'tokenizer.ggml.tokens', string 0"]),
    ("float count", SCORES_COUNT, "<Q", HUGE, ["'tokenizer.ggml.scores'"]),
    ("n_dims", EMBD, "<I", 2**31, ["'token_embd.weight'", "dimensions"]),
    ("dimension", EMBD + 4, "<Q", 2**62, ["'token_embd.weight'"]),
    ("tensor type", EMBD + 20, "<I", 9999, ["'token_embd.weight'"]),
    ("tensor offset", EMBD + 24, "<Q", HUGE, ["'token_embd.weight'"]),
    ("unaligned offset", EMBD + 24, "<Q", 4, ["not 32-aligned"]),
    ("version", 4, "<I", 7, ["version 7"]),
    ("big-endian version", 4, ">I", 3, ["big-endian"]),
]


@pytest.mark.parametrize(
    "offset, fmt, value, words", [a[1:] for a in ABSURD], ids=[a[0] for a in ABSURD]
)
def test_absurd_numbers_fail_fast_and_small(offset, fmt, value, words) -> None:
    """An absurd count or length is named, without time or memory spent on it."""
    data, path = patched(offset, fmt, value), Path("absurd.gguf")
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(BAD_FILE) as error:
        parse_gguf(data, path)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert_one_line(error.value, path, *words)
    assert elapsed < 0.5, f"{elapsed:.2f} s"
    assert peak < 4_000_000, f"{peak} bytes allocated"


@pytest.mark.parametrize(
    "kvs, words",
    [
        ([kv("a", V.UINT8, b"\x01"), kv("a", V.UINT8, b"\x02")], ["'a'", "twice"]),
        ([kv("general.alignment", V.UINT32, struct.pack("<I", 48))], ["alignment"]),
        ([kv("general.alignment", V.STRING, text("32"))], ["alignment"]),
        ([kv("deep", V.ARRAY, array(V.ARRAY, 1, b"") * 9)], ["'deep'", "deep"]),
        ([kv("s", V.STRING, text("ok")[:-1])], ["'s'", "truncated"]),
        ([kv(b"\xff", V.UINT8, b"\x01")], ["metadata entry 0", "UTF-8"]),
    ],
    ids=["duplicate", "alignment", "alignment-type", "nesting", "cut", "key-utf8"],
)
def test_corrupt_metadata_is_named(kvs: list[bytes], words: list[str]) -> None:
    """Duplicate keys, bad alignment, deep nesting and bad keys name the key."""
    path = Path("bad.gguf")
    with pytest.raises(ModelFileError) as error:
        parse_gguf(gguf_bytes(kvs), path)
    assert_one_line(error.value, path, *words)


def test_tensor_past_the_end_is_named(tmp_path: Path) -> None:
    """A file cut inside its tensor data names the tensor that is cut."""
    path = tmp_path / "cut.gguf"
    path.write_bytes(stories_bytes()[:-1])
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    assert_one_line(error.value, path, "truncated", "'blk.4.ffn_norm.weight'")


def cut_points(size: int, header: int, rng: random.Random, n: int) -> list[int]:
    """Every offset of the first 100 bytes, `n` in the header, 10 in the data."""
    points = set(range(min(100, size)))
    points |= {rng.randrange(header) for _ in range(n)}
    points |= {rng.randrange(header, size) for _ in range(10 if size > header else 0)}
    return sorted(points)


FUZZED = {"stories260K": (STORIES, 1500, 1000), "gpt2-vocab": (GPT2_VOCAB, 60, 80)}


@pytest.mark.parametrize("path, cuts, flips", FUZZED.values(), ids=FUZZED.keys())
def test_fuzzed_headers_give_only_model_errors(path: Path, cuts, flips) -> None:
    """Truncated copies and copies with header bytes flipped or set absurd."""
    rng, data = random.Random(f"fuzz {path.name}"), path.read_bytes()
    # GPT-2's vocabulary has no tensors: its header ends where the file does.
    header = min(read_gguf(path).data_offset, len(data))
    start = time.perf_counter()
    for cut in cut_points(len(data), header, rng, cuts):
        with pytest.raises(BAD_FILE) as error:
            parse_gguf(data[:cut], path)
        assert_one_line(error.value, path)
    for _ in range(flips):  # each either reads or fails in one line
        try:
            parsed = parse_gguf(mutate(data, header, rng), path)
            if parsed.tensors:
                read_weights(parsed, path)
        except BAD_FILE as error:
            assert_one_line(error, path)
    assert time.perf_counter() - start < 60


def mutate(data: bytes, header: int, rng: random.Random) -> bytes:
    """`data` with 1-3 header bytes flipped, or a header number set absurd."""
    out = bytearray(data)
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(header)] ^= 1 << rng.randrange(8)
        return bytes(out)
    fmt, value = rng.choice(
        [("<Q", HUGE), ("<Q", 2**64 - 1), ("<Q", 2**32), ("<Q", len(data))]
        + [("<I", 2**32 - 1), ("<I", 13), ("<I", 9), ("<I", 0)]
    )
    at = rng.randrange(header - struct.calcsize(fmt))
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def test_fuzzed_files_load_or_fail_in_one_line(tmp_path: Path) -> None:
    """Whole loads of damaged stories260K files end in one-line model errors."""
    rng, data = random.Random("load fuzz"), stories_bytes()
    header = read_gguf(STORIES).data_offset
    path = tmp_path / "fuzzed.gguf"
    for _ in range(100):
        path.write_bytes(mutate(data, header, rng))
        try:
            load_model(path)
        except BAD_FILE as error:
            assert_one_line(error, path)
