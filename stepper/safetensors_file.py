"""Read the tensors of one or more `.safetensors` files as float32 numpy arrays.

`safetensors`' numpy framework reads F32 and F16 directly. numpy has no bfloat16,
so BF16 tensors are read as raw 16-bit words at the offsets the file's own header
gives, and widened to float32 (a bfloat16 is the top half of a float32).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from stepper.errors import ModelFileError, UnsupportedModelError

SUPPORTED_DTYPES = ("F32", "F16", "BF16")


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of one file as float32, and each tensor's stored dtype."""
    try:
        with safe_open(path, framework="numpy") as handle:
            names = list(handle.keys())  # safe_open is not a mapping: no `in handle`
            dtypes = {key: handle.get_slice(key).get_dtype() for key in names}
            for key, dtype in dtypes.items():
                _refuse_dtype(path, key, dtype)
            tensors = {
                key: np.ascontiguousarray(handle.get_tensor(key), dtype=np.float32)
                for key, dtype in dtypes.items()
                if dtype != "BF16"
            }
    except SafetensorError as error:
        raise ModelFileError(
            f"{path}: unreadable safetensors file ({error}); it is truncated or "
            "corrupt, download or save it again"
        ) from None
    bf16 = [key for key, dtype in dtypes.items() if dtype == "BF16"]
    if bf16:
        header, base = _header(path)
        tensors.update({key: read_bf16(path, header[key], base) for key in bf16})
    return tensors, dtypes


def _refuse_dtype(path: Path, key: str, dtype: str) -> None:
    """Refuse tensor types stepper does not read (quantized or integer ones)."""
    if dtype not in SUPPORTED_DTYPES:
        raise UnsupportedModelError(
            f"{path}: tensor {key!r} has dtype {dtype}; stepper reads "
            f"{', '.join(SUPPORTED_DTYPES)}, save the model in one of those"
        )


def _header(path: Path) -> tuple[dict[str, Any], int]:
    """The file's JSON header and the offset where tensor data starts."""
    with path.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        header = json.loads(stream.read(length))
    return header, 8 + length


def read_bf16(path: Path, entry: dict[str, Any], base: int) -> np.ndarray:
    """One BF16 tensor widened to float32, read at its header entry's byte offsets.

    `safe_open` has already checked that the offsets lie inside the file.
    """
    # shape: entry["shape"], the tensor's own shape
    begin, end = (int(n) for n in entry["data_offsets"])
    shape = tuple(int(n) for n in entry["shape"])
    words = np.fromfile(
        path, dtype="<u2", count=(end - begin) // 2, offset=base + begin
    )
    # A bfloat16 is the high 16 bits of the float32 with the same value.
    widened = words.astype(np.uint32) << np.uint32(16)
    return widened.view(np.float32).reshape(shape)
