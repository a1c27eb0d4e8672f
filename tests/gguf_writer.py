"""Write small GGUF files at test time from the fixtures, in any tensor type.

`llama_gguf` re-encodes stories260K (llama architecture, adjacent RoPE pairs);
`gpt2_gguf` turns tests/fixtures/hf-gpt2-tiny into a gpt2-architecture GGUF. Both
quantize with `gguf.quants.quantize`. Like llama.cpp, a tensor whose rows do not
fill whole quantization blocks (a vector, or stories260K's 172-wide ffn_down) is
kept in F32, so every file still loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent
STORIES = ROOT / "stepper" / "models" / "stories260K.gguf"
GPT2_DIR = ROOT / "tests" / "fixtures" / "hf-gpt2-tiny"
Q = gguf.GGMLQuantizationType


def encode(array: np.ndarray, qtype: Q) -> tuple[np.ndarray, Q]:
    """What to store for `array` as `qtype`, and the type it is actually stored as."""
    block, _ = gguf.GGML_QUANT_SIZES[qtype]
    if qtype != Q.F32 and (array.ndim < 2 or array.shape[-1] % block):
        return array.astype(np.float32), Q.F32
    return gguf.quants.quantize(array.astype(np.float32), qtype), qtype


def write_gguf(
    path: Path,
    arch: str,
    keys: list[tuple[str, object, gguf.GGUFValueType]],
    weights: dict[str, np.ndarray],
    qtype: Q,
) -> dict[str, Q]:
    """Write a GGUF file; return the type each tensor was stored as."""
    writer = gguf.GGUFWriter(path, arch)
    for key, value, vtype in keys:
        writer.add_key_value(key, value, vtype)
    stored = {}
    for name, array in weights.items():
        data, stored[name] = encode(array, qtype)
        writer.add_tensor(name, data, raw_dtype=stored[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return stored


def stories_source() -> tuple[list[tuple[str, object, gguf.GGUFValueType]], dict]:
    """stories260K's metadata (as key, value, type) and float32 tensors."""
    reader = gguf.GGUFReader(STORIES)
    keys = [
        (key, field.contents(), field.types[0])
        for key, field in reader.fields.items()
        if not key.startswith("GGUF.") and key != "general.architecture"
    ]
    weights = {t.name: np.array(t.data, dtype=np.float32) for t in reader.tensors}
    return keys, weights


def llama_gguf(path: Path, qtype: Q) -> dict[str, Q]:
    """stories260K re-encoded with its 2-D tensors stored as `qtype`."""
    keys, weights = stories_source()
    return write_gguf(path, "llama", keys, weights, qtype)


def gpt2_weights() -> dict[str, np.ndarray]:
    """hf-gpt2-tiny's weights under GGUF names, [out, in] layout."""
    hf = load_file(GPT2_DIR / "model.safetensors")
    n_layer = json.loads((GPT2_DIR / "config.json").read_text())["n_layer"]
    out = {
        "token_embd.weight": hf["transformer.wte.weight"],
        "position_embd.weight": hf["transformer.wpe.weight"],
        "output_norm.weight": hf["transformer.ln_f.weight"],
        "output_norm.bias": hf["transformer.ln_f.bias"],
    }
    parts = {
        "ln_1": "attn_norm",
        "attn.c_attn": "attn_qkv",
        "attn.c_proj": "attn_output",
        "ln_2": "ffn_norm",
        "mlp.c_fc": "ffn_up",
        "mlp.c_proj": "ffn_down",
    }
    for i in range(n_layer):
        for hf_part, part in parts.items():
            w = hf[f"transformer.h.{i}.{hf_part}.weight"]
            # Conv1D weights are [in, out]; LayerNorm weights are vectors.
            out[f"blk.{i}.{part}.weight"] = np.ascontiguousarray(
                w.T if w.ndim == 2 else w
            )
            out[f"blk.{i}.{part}.bias"] = hf[f"transformer.h.{i}.{hf_part}.bias"]
    return out


def gpt2_keys() -> list[tuple[str, object, gguf.GGUFValueType]]:
    """gpt2-architecture metadata for hf-gpt2-tiny, tokenizer included."""
    cfg = json.loads((GPT2_DIR / "config.json").read_text())
    u32, f32 = gguf.GGUFValueType.UINT32, gguf.GGUFValueType.FLOAT32
    keys: list[tuple[str, object, gguf.GGUFValueType]] = [
        ("gpt2.context_length", cfg["n_positions"], u32),
        ("gpt2.embedding_length", cfg["n_embd"], u32),
        ("gpt2.feed_forward_length", 4 * cfg["n_embd"], u32),
        ("gpt2.block_count", cfg["n_layer"], u32),
        ("gpt2.attention.head_count", cfg["n_head"], u32),
        ("gpt2.attention.layer_norm_epsilon", cfg["layer_norm_epsilon"], f32),
    ]
    return keys + gpt2_tokenizer_keys()


def gpt2_tokenizer_keys() -> list[tuple[str, object, gguf.GGUFValueType]]:
    """tokenizer.ggml.* keys equivalent to hf-gpt2-tiny's tokenizer.json."""
    tok = json.loads((GPT2_DIR / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.__getitem__)
    special = {t["content"] for t in tok["added_tokens"] if t["special"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    eos = vocab["<|endoftext|>"]
    arr, s, u32 = (
        gguf.GGUFValueType.ARRAY,
        gguf.GGUFValueType.STRING,
        gguf.GGUFValueType.UINT32,
    )
    return [
        ("tokenizer.ggml.model", "gpt2", s),
        ("tokenizer.ggml.pre", "gpt-2", s),
        ("tokenizer.ggml.tokens", tokens, arr),
        ("tokenizer.ggml.token_type", [3 if t in special else 1 for t in tokens], arr),
        ("tokenizer.ggml.merges", merges, arr),
        ("tokenizer.ggml.bos_token_id", eos, u32),
        ("tokenizer.ggml.eos_token_id", eos, u32),
    ]


def gpt2_gguf(path: Path, qtype: Q) -> dict[str, Q]:
    """hf-gpt2-tiny as a gpt2-architecture GGUF with 2-D tensors stored as `qtype`."""
    return write_gguf(path, "gpt2", gpt2_keys(), gpt2_weights(), qtype)
