"""Loading Hugging Face directories: configs, key renaming, dtypes, shards, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from test_load import one_line

from stepper.errors import ModelFileError, UnsupportedModelError
from stepper.load import load_model

FIXTURES = Path(__file__).parent / "fixtures"
LLAMA, GPT2 = FIXTURES / "hf-llama-stories260k", FIXTURES / "hf-gpt2-tiny"


def copy_dir(src: Path, dst: Path, **config: object) -> Path:
    """A copy of a fixture directory with config.json keys replaced (None drops)."""
    shutil.copytree(src, dst)
    path = dst / "config.json"
    data = json.loads(path.read_text())
    data.update(config)
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    return dst


def edit_tensors(directory: Path, **changes: np.ndarray | None) -> None:
    """Add, replace or (with None) remove tensors of model.safetensors."""
    path = directory / "model.safetensors"
    tensors = load_file(path)
    for key, value in changes.items():
        tensors.pop(key.replace("__", "."), None)
        if value is not None:
            tensors[key.replace("__", ".")] = value
    save_file(tensors, path)


def test_llama_dir_config_and_half_split_layout() -> None:
    """The HF Llama gets a GQA config and keeps Q/K rows as stored (half split)."""
    model = load_model(LLAMA)
    cfg = model.config
    assert (cfg.arch, cfg.n_layers, cfg.n_embd, cfg.n_heads) == ("llama", 5, 64, 8)
    assert (cfg.n_kv_heads, cfg.n_ff, cfg.n_vocab, cfg.n_ctx) == (4, 172, 512, 512)
    assert (cfg.rope_pairs, cfg.rope_theta, cfg.norm_eps) == ("half", 10000.0, 1e-5)
    raw = load_file(LLAMA / "model.safetensors")
    q = model.weights["blk.2.attn_q.weight"]
    assert np.array_equal(q, raw["model.layers.2.self_attn.q_proj.weight"])
    assert model.weights["blk.2.attn_k.weight"].shape == (32, 64)
    assert "output.weight" not in model.weights  # tied
    assert set(model.tensor_types.values()) == {"F32"}
    assert model.tokenizer.bos_id == 1 and model.tokenizer.eos_id == 2


def test_llama_dir_is_the_gguf_model_with_rows_reordered() -> None:
    """Same stories260K weights as the built-in, Q/K rows moved within each head."""
    hf, gguf_model = load_model(LLAMA), load_model("stories260k")
    same = ["token_embd.weight", "blk.0.ffn_down.weight", "blk.4.attn_v.weight"]
    for name in same:
        assert np.array_equal(hf.weights[name], gguf_model.weights[name]), name
    q_hf, q_gguf = (
        hf.weights["blk.0.attn_q.weight"],
        gguf_model.weights["blk.0.attn_q.weight"],
    )
    assert not np.array_equal(q_hf, q_gguf)
    # Half-split row i of a head is adjacent-pair row 2i; row i + D/2 is row 2i + 1.
    d = 8
    for head in range(8):
        rows = q_gguf[head * d : (head + 1) * d]
        want = np.concatenate([rows[0::2], rows[1::2]])
        assert np.array_equal(q_hf[head * d : (head + 1) * d], want), head


def test_gpt2_dir_config_and_conv1d_transpose() -> None:
    """GPT-2 keys are renamed and its [in, out] Conv1D weights transposed."""
    model = load_model(GPT2)
    cfg = model.config
    assert (cfg.arch, cfg.n_layers, cfg.n_embd, cfg.n_heads) == ("gpt2", 2, 64, 4)
    assert (cfg.n_ff, cfg.n_vocab, cfg.n_ctx, cfg.norm_eps) == (256, 512, 128, 1e-5)
    raw = load_file(GPT2 / "model.safetensors")
    qkv = model.weights["blk.1.attn_qkv.weight"]
    assert qkv.shape == (192, 64) and qkv.flags.c_contiguous
    assert np.array_equal(qkv, raw["transformer.h.1.attn.c_attn.weight"].T)
    assert np.array_equal(
        model.weights["blk.0.ffn_down.weight"],
        raw["transformer.h.0.mlp.c_proj.weight"].T,
    )
    assert np.array_equal(
        model.weights["output_norm.bias"], raw["transformer.ln_f.bias"]
    )
    assert model.weights["position_embd.weight"].shape == (128, 64)
    assert model.tokenizer.eos_id == 0  # from generation_config.json


def _expected_bf16(x: np.ndarray) -> np.ndarray:
    """float32 rounded to bfloat16 (nearest, ties to even) and widened back."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    return rounded.astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_half_precision_safetensors_upcast_exactly(dtype, tmp_path) -> None:
    """F16 and BF16 checkpoints widen to exactly the rounded float32 values."""
    directory = copy_dir(GPT2, tmp_path / dtype)
    shutil.copy(
        FIXTURES / "gpt2-tiny-dtypes" / f"model-{dtype}.safetensors",
        directory / "model.safetensors",
    )
    model, f32 = load_model(directory), load_model(GPT2)
    round_trip = _expected_bf16 if dtype == "bf16" else _f16_round_trip
    for name, array in model.weights.items():
        assert array.dtype == np.float32
        assert np.array_equal(array, round_trip(f32.weights[name])), name
    assert set(model.tensor_types.values()) == {dtype.upper()}


def _f16_round_trip(x: np.ndarray) -> np.ndarray:
    """float32 rounded to float16 and widened back."""
    return x.astype(np.float16).astype(np.float32)


def _shard(directory: Path) -> dict[str, str]:
    """Split model.safetensors into two shards with an index; return the map."""
    tensors = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    names = sorted(tensors)
    files = {"model-00001-of-00002.safetensors": names[::2]}
    files["model-00002-of-00002.safetensors"] = names[1::2]
    weight_map = {}
    for file, keys in files.items():
        save_file({k: tensors[k] for k in keys}, directory / file)
        weight_map.update(dict.fromkeys(keys, file))
    index = {"metadata": {}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    return weight_map


def test_sharded_checkpoint_loads_like_the_single_file(tmp_path) -> None:
    """A model.safetensors.index.json with two shards gives the same weights."""
    directory = copy_dir(LLAMA, tmp_path / "sharded")
    _shard(directory)
    sharded, single = load_model(directory), load_model(LLAMA)
    assert sharded.weights.keys() == single.weights.keys()
    for name, array in single.weights.items():
        assert np.array_equal(sharded.weights[name], array), name


def test_missing_shard_is_named(tmp_path) -> None:
    """A shard the index lists but the directory lacks is named."""
    directory = copy_dir(LLAMA, tmp_path / "sharded")
    _shard(directory)
    (directory / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, "model-00002-of-00002.safetensors", "missing")


def test_mistral_sliding_window_caps_the_context(tmp_path) -> None:
    """Mistral reduces to Llama; a window shorter than the context caps it."""
    directory = copy_dir(
        LLAMA, tmp_path / "m", architectures=["MistralForCausalLM"], sliding_window=100
    )
    assert load_model(directory).config.n_ctx == 100
    no_window = copy_dir(
        LLAMA, tmp_path / "n", architectures=["MistralForCausalLM"], sliding_window=None
    )
    assert load_model(no_window).config.n_ctx == 512


def test_qwen2_qkv_biases_are_loaded(tmp_path) -> None:
    """Qwen2's q/k/v biases arrive under GGUF names with their shapes."""
    directory = copy_dir(LLAMA, tmp_path / "q", architectures=["Qwen2ForCausalLM"])
    rng = np.random.default_rng(0)
    biases = {}
    for i in range(5):
        for proj, width in (("q", 64), ("k", 32), ("v", 32)):
            key = f"model__layers__{i}__self_attn__{proj}_proj__bias"
            biases[key] = rng.normal(size=width).astype(np.float32)
    edit_tensors(directory, **biases)
    model = load_model(directory)
    want = biases["model__layers__3__self_attn__k_proj__bias"]
    assert np.array_equal(model.weights["blk.3.attn_k.bias"], want)
    assert model.weights["blk.0.attn_q.bias"].shape == (64,)


def test_untied_classifier_is_kept_and_required(tmp_path) -> None:
    """With tie_word_embeddings false, lm_head becomes output.weight, or is missed."""
    directory = copy_dir(LLAMA, tmp_path / "u", tie_word_embeddings=False)
    head = np.full((512, 64), 0.5, dtype=np.float32)
    edit_tensors(directory, lm_head__weight=head)
    assert np.array_equal(load_model(directory).weights["output.weight"], head)
    edit_tensors(directory, lm_head__weight=None)
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, directory, "lm_head.weight", "tie")


# ---- broken directories --------------------------------------------------------


def test_missing_config_json(tmp_path) -> None:
    """A directory without config.json names that file."""
    directory = copy_dir(LLAMA, tmp_path / "d")
    (directory / "config.json").unlink()
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, directory / "config.json", "missing")


def test_invalid_config_json(tmp_path) -> None:
    """A config.json that is not JSON gives the parser's position."""
    directory = copy_dir(LLAMA, tmp_path / "d")
    (directory / "config.json").write_text('{"architectures": [')
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, directory / "config.json", "not valid JSON", "line 1")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"architectures": ["BertModel"]}, "BertModel"),
        ({"rope_parameters": {"rope_type": "linear", "factor": 2.0}}, "linear"),
        ({"rope_scaling": {"type": "dynamic", "factor": 2.0}}, "dynamic"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"head_dim": 16}, "head_dim"),
    ],
)
def test_unsupported_config_values_are_refused(change, named, tmp_path) -> None:
    """Architectures and settings stepper would get wrong are refused by key."""
    directory = copy_dir(LLAMA, tmp_path / "d", **change)
    with pytest.raises(UnsupportedModelError) as error:
        load_model(directory)
    one_line(error, directory, named)


def test_bad_size_in_config_is_named(tmp_path) -> None:
    """A non-integer size names the key."""
    directory = copy_dir(LLAMA, tmp_path / "d", num_hidden_layers="five")
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, directory, "num_hidden_layers")


def test_config_disagreeing_with_tensors_names_the_tensor(tmp_path) -> None:
    """A config whose sizes do not match the weights names a tensor and shapes."""
    directory = copy_dir(LLAMA, tmp_path / "d", num_key_value_heads=8)
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, "model.layers.0.self_attn.k_proj.weight", "[32, 64]", "[64, 64]")


def test_missing_tokenizer_json(tmp_path) -> None:
    """Without tokenizer.json the error names it."""
    directory = copy_dir(GPT2, tmp_path / "d")
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, directory / "tokenizer.json", "missing")


def test_truncated_safetensors(tmp_path) -> None:
    """A cut-short safetensors file is reported as truncated or corrupt."""
    directory = copy_dir(GPT2, tmp_path / "d")
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelFileError) as error:
        load_model(directory)
    one_line(error, path, "truncated")


def test_unsupported_dtype_names_the_tensor(tmp_path) -> None:
    """An integer or float64 tensor is refused by name and dtype."""
    directory = copy_dir(GPT2, tmp_path / "d")
    edit_tensors(directory, transformer__ln_f__bias=np.zeros(64, dtype=np.float64))
    with pytest.raises(UnsupportedModelError) as error:
        load_model(directory)
    one_line(error, "transformer.ln_f.bias", "F64")


def test_unknown_checkpoint_key_is_refused(tmp_path) -> None:
    """A key with no place in the architecture (an o_proj bias) is refused by name."""
    directory = copy_dir(LLAMA, tmp_path / "d")
    bias = np.zeros(64, dtype=np.float32)
    edit_tensors(directory, model__layers__0__self_attn__o_proj__bias=bias)
    with pytest.raises(UnsupportedModelError) as error:
        load_model(directory)
    one_line(error, directory, "model.layers.0.self_attn.o_proj.bias")
