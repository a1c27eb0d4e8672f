"""Dequantization of the GGUF block formats stepper reads.

The loader calls `gguf.quants.dequantize`. These tests pin it against small
reference decoders written here from the block layouts of ggml's formats, run on
random blocks, and check that a GGUF holding such blocks loads to the same floats.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from stepper.gguf_file import open_gguf, read_weights

Q = gguf.GGMLQuantizationType
QK_K = 256  # values per super-block of the K formats


def _f16(raw: np.ndarray) -> float:
    """Two little-endian bytes read as a float16."""
    return float(raw[:2].copy().view("<f2")[0])


def ref_q8_0(block: np.ndarray) -> np.ndarray:
    """Q8_0: f16 scale d, then 32 int8 values; x = d * q."""
    # shape: [32]
    d = _f16(block[0:2])
    return d * block[2:34].view(np.int8).astype(np.float32)


def ref_q4_0(block: np.ndarray) -> np.ndarray:
    """Q4_0: f16 scale d, then 16 bytes; low nibbles are values 0-15, high 16-31."""
    # shape: [32]
    d = _f16(block[0:2])
    qs = block[2:18]
    low = (qs & 0x0F).astype(np.float32) - 8
    high = (qs >> 4).astype(np.float32) - 8
    return d * np.concatenate([low, high])


def _scale_min_k4(j: int, packed: np.ndarray) -> tuple[int, int]:
    """The 6-bit scale and min of sub-block j, unpacked from Q4_K's 12 bytes."""
    q = [int(b) for b in packed]
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)
    minimum = (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
    return scale, minimum


def ref_q4_k(block: np.ndarray) -> np.ndarray:
    """Q4_K: f16 d and dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.

    Each 64-value chunk takes 32 bytes: low nibbles give its first 32 values with
    sub-block 2c's scale and min, high nibbles the next 32 with sub-block 2c+1's.
    """
    # shape: [256]
    d, dmin = _f16(block[0:2]), _f16(block[2:4])
    packed, qs = block[4:16], block[16:144]
    out = np.empty(QK_K, dtype=np.float32)
    for chunk in range(4):
        q = qs[32 * chunk : 32 * chunk + 32].astype(np.float32)
        for half, nibbles in enumerate((q % 16, q // 16)):
            scale, minimum = _scale_min_k4(2 * chunk + half, packed)
            start = 64 * chunk + 32 * half
            out[start : start + 32] = d * scale * nibbles - dmin * minimum
    return out


def ref_q6_k(block: np.ndarray) -> np.ndarray:
    """Q6_K: 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales, f16 d.

    Each 128-value half uses 64 low-bit bytes, 32 high-bit bytes and 8 scales; a
    scale covers 16 consecutive values.
    """
    # shape: [256]
    ql, qh = block[0:128].astype(np.int32), block[128:192].astype(np.int32)
    scales = block[192:208].view(np.int8).astype(np.float32)
    d = _f16(block[208:210])
    out = np.empty(QK_K, dtype=np.float32)
    for h in range(2):
        low, high, sc = (
            ql[64 * h : 64 * h + 64],
            qh[32 * h : 32 * h + 32],
            scales[8 * h :],
        )
        for l in range(32):  # noqa: E741 (the format's own index name)
            quarter = [
                (low[l] & 0xF) | (((high[l] >> 0) & 3) << 4),
                (low[l + 32] & 0xF) | (((high[l] >> 2) & 3) << 4),
                (low[l] >> 4) | (((high[l] >> 4) & 3) << 4),
                (low[l + 32] >> 4) | (((high[l] >> 6) & 3) << 4),
            ]
            for k, q in enumerate(quarter):
                out[128 * h + 32 * k + l] = d * sc[l // 16 + 2 * k] * (q - 32)
    return out


REFERENCES = {Q.Q8_0: ref_q8_0, Q.Q4_0: ref_q4_0, Q.Q4_K: ref_q4_k, Q.Q6_K: ref_q6_k}
# Byte offsets of each format's float16 scale fields.
SCALE_FIELDS = {Q.Q8_0: (0,), Q.Q4_0: (0,), Q.Q4_K: (0, 2), Q.Q6_K: (208,)}


def random_blocks(qtype: Q, n: int, seed: int) -> np.ndarray:
    """`n` random blocks of `qtype` with finite f16 scales: [n, bytes per block]."""
    rng = np.random.default_rng(seed)
    _, size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    for offset in SCALE_FIELDS[qtype]:
        scales = rng.uniform(-0.05, 0.05, size=n).astype("<f2")
        blocks[:, offset : offset + 2] = scales.view(np.uint8).reshape(n, 2)
    return blocks


@pytest.mark.parametrize("qtype", list(REFERENCES), ids=lambda q: q.name)
def test_gguf_dequantize_matches_the_block_layout(qtype: Q) -> None:
    """gguf.quants.dequantize decodes random blocks exactly as the layout says."""
    blocks = random_blocks(qtype, 24, seed=int(qtype))
    got = gguf.quants.dequantize(blocks, qtype).reshape(len(blocks), -1)
    want = np.stack([REFERENCES[qtype](b) for b in blocks])
    diff = np.abs(got - want).max()
    assert np.allclose(got, want, rtol=1e-6, atol=1e-7), f"largest difference {diff}"


def _write_raw(path: Path, qtype: Q, blocks: np.ndarray, rows: int) -> None:
    """A GGUF with one tensor `w` holding `blocks` as `qtype`, `rows` rows."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("w", blocks.reshape(rows, -1), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("qtype", list(REFERENCES), ids=lambda q: q.name)
def test_loader_reads_quantized_tensors_as_the_layout_says(
    qtype: Q, tmp_path: Path
) -> None:
    """A GGUF tensor of each quantized type loads to the reference floats, [out, in]."""
    rows, per_row = 3, 2  # blocks per row
    blocks = random_blocks(qtype, rows * per_row, seed=100 + int(qtype))
    path = tmp_path / f"{qtype.name}.gguf"
    _write_raw(path, qtype, blocks, rows)
    weights, types = read_weights(open_gguf(path), path)
    want = np.stack([REFERENCES[qtype](b) for b in blocks]).reshape(rows, -1)
    assert types == {"w": qtype.name}
    assert weights["w"].dtype == np.float32 and weights["w"].flags.c_contiguous
    np.testing.assert_allclose(weights["w"], want, rtol=1e-6, atol=1e-7)


# The scale d is stored as float16, so besides rounding to the nearest step a value
# may be off by its step count times d's own rounding error (2**-11 relative).
F16_EPS = 2.0**-11
ROUND_TRIP_BOUNDS = {
    # step amax/127: half a step, plus up to 127 steps of d's error
    Q.Q8_0: (0.5 + 127 * F16_EPS) / 127,
    # step amax/8, and 7 steps at most on the side opposite the largest magnitude,
    # so clamping can cost a whole step, plus up to 8 steps of d's error
    Q.Q4_0: (1 + 8 * F16_EPS) / 8,
}


@pytest.mark.parametrize("qtype", list(ROUND_TRIP_BOUNDS), ids=lambda q: q.name)
def test_quantize_round_trip_error_is_within_a_step(qtype: Q) -> None:
    """Quantizing then dequantizing errs by no more than the format allows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(16, 64)).astype(np.float32)
    y = gguf.quants.dequantize(gguf.quants.quantize(x, qtype), qtype)
    blocks, err = x.reshape(-1, 32), np.abs(y - x).reshape(-1, 32)
    limit = ROUND_TRIP_BOUNDS[qtype] * np.abs(blocks).max(axis=1, keepdims=True)
    excess = err - limit * (1 + 1e-6)
    assert (excess <= 0).all(), f"largest excess over the bound {excess.max()}"
