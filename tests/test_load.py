"""Loading GGUF files and the built-in model, and every way a model file can be bad.

Hugging Face directories are tested in test_load_hf.py. Each error test checks the
kind of error, that its message is one line, and that it names the file and the
place (key or tensor) so the user can act on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf_writer import (
    STORIES,
    gpt2_gguf,
    gpt2_weights,
    llama_gguf,
    stories_source,
    write_gguf,
)

import stepper
from stepper.errors import ModelFileError, StepperError, UnsupportedModelError
from stepper.load import BUILTIN_MODELS, describe, load_model
from stepper.model import Model

Q = gguf.GGMLQuantizationType
DATA = Path(__file__).parent / "data"


def one_line(error: pytest.ExceptionInfo[StepperError], *parts: object) -> str:
    """The error's message, checked to be one line that mentions every part."""
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert str(part) in message, f"{part!r} not in {message!r}"
    return message


@pytest.fixture(scope="module")
def builtin() -> Model:
    """The built-in stories260k, loaded once for this module."""
    return load_model("stories260k")


def test_builtin_config_matches_the_file_metadata(builtin) -> None:
    """Every configuration value of stories260k is the one its GGUF metadata states."""
    fields = gguf.GGUFReader(STORIES).fields
    meta = {k: f.contents() for k, f in fields.items() if k.startswith("llama.")}
    cfg = builtin.config
    assert cfg.arch == "llama" and cfg.rope_pairs == "adjacent"
    assert cfg.n_layers == meta["llama.block_count"] == 5
    assert cfg.n_embd == meta["llama.embedding_length"] == 64
    assert cfg.n_heads == meta["llama.attention.head_count"] == 8
    assert cfg.n_kv_heads == meta["llama.attention.head_count_kv"] == 4
    assert cfg.n_ff == meta["llama.feed_forward_length"] == 172
    assert cfg.n_ctx == meta["llama.context_length"] == 2048
    assert cfg.rope_dim == meta["llama.rope.dimension_count"] == 8
    assert cfg.norm_eps == 1e-5 and cfg.rope_theta == 10000.0
    assert cfg.n_vocab == len(fields["tokenizer.ggml.tokens"].contents()) == 512


def test_builtin_weights_follow_the_contract(builtin) -> None:
    """Float32 [out, in] arrays; the tied classifier copy is kept once."""
    w = builtin.weights
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in w.values())
    assert w["blk.0.attn_k.weight"].shape == (32, 64)
    assert w["blk.4.ffn_down.weight"].shape == (64, 172)
    assert "output.weight" not in w
    assert builtin.n_params == 292_800 - 512 * 64
    assert builtin.tensor_types == {name: "F32" for name in builtin.tensor_types}
    assert len(builtin.tensor_types) == 48


def test_builtin_is_found_inside_the_package_by_any_case() -> None:
    """`STORIES260K` names the same file, shipped under stepper/models/."""
    model = load_model("STORIES260K")
    assert model.name == "stories260k"
    assert model.source == Path(stepper.__file__).parent / "models" / "stories260K.gguf"
    assert "stories260k" in BUILTIN_MODELS


def test_sha256_is_computed_lazily_from_the_file() -> None:
    """The content hash is not computed at load, then equals sha256sum of the file."""
    model = load_model("stories260k")
    assert "sha256" not in vars(model)
    assert model.sha256 == hashlib.sha256(STORIES.read_bytes()).hexdigest()


def test_describe_gives_what_inspect_prints(builtin) -> None:
    """describe() lists sizes, vocabulary, tensor types, tokenizer and identity."""
    rows = dict(describe(builtin))
    assert rows["architecture"] == "llama"
    assert rows["layers"] == "5" and rows["width"] == "64"
    assert rows["heads"] == "8 query, 4 key/value" and rows["head width"] == "8"
    assert rows["vocabulary"] == "512" and rows["context"] == "2048"
    assert rows["tensor types"] == "F32 x48"
    assert rows["parameters"] == "260,032"
    assert "<s>" in rows["BOS / EOS"] and "</s>" in rows["BOS / EOS"]
    assert rows["sha256"].startswith("270cba1b")


# Largest error of a dequantized tensor, as a fraction of its largest magnitude.
TYPE_BOUNDS = {Q.F32: 0, Q.F16: 2**-11, Q.BF16: 2**-8, Q.Q8_0: 1 / 200, Q.Q4_0: 0.13}


@pytest.mark.parametrize("qtype", list(TYPE_BOUNDS), ids=lambda q: q.name)
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_gguf_tensor_types_load_close_to_the_source(arch, qtype, tmp_path) -> None:
    """Each tensor type dequantizes within its precision and is recorded by name."""
    path = tmp_path / f"{arch}-{qtype.name}.gguf"
    stored = (llama_gguf if arch == "llama" else gpt2_gguf)(path, qtype)
    model = load_model(path)
    assert model.tensor_types == {k: v.name for k, v in stored.items()}
    assert qtype.name in model.tensor_types.values()
    source = stories_source()[1] if arch == "llama" else gpt2_weights()
    for name, array in model.weights.items():
        error = np.abs(array - source[name]).max()
        assert error <= TYPE_BOUNDS[qtype] * np.abs(source[name]).max(), name


def test_gpt2_gguf_has_gpt2_config(tmp_path) -> None:
    """A gpt2-architecture GGUF gives LayerNorm eps, learned positions and sizes."""
    gpt2_gguf(tmp_path / "g.gguf", Q.F32)
    model = load_model(tmp_path / "g.gguf")
    cfg = model.config
    assert (cfg.arch, cfg.n_layers, cfg.n_embd, cfg.n_heads) == ("gpt2", 2, 64, 4)
    assert (cfg.n_kv_heads, cfg.n_ff, cfg.n_ctx, cfg.n_vocab) == (4, 256, 128, 512)
    assert model.weights["position_embd.weight"].shape == (128, 64)
    assert model.weights["blk.1.attn_qkv.bias"].shape == (192,)


# ---- references that are not model files ------------------------------------


def test_missing_path_names_it_and_the_builtins(tmp_path) -> None:
    """A path that does not exist is named, with the built-in names to try."""
    with pytest.raises(ModelFileError) as error:
        load_model(tmp_path / "nope.gguf")
    one_line(error, tmp_path / "nope.gguf", "stories260k", "no such file")


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt"])
def test_pickled_checkpoints_are_refused_untouched(suffix, tmp_path) -> None:
    """Pickles are refused without being opened, saying why and how to convert."""
    path = tmp_path / f"pytorch_model{suffix}"
    path.write_bytes(b"\x80\x04not really a pickle")
    before = path.stat()
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path, "arbitrary code", "safe_serialization", "convert_hf_to_gguf")
    assert path.read_bytes() == b"\x80\x04not really a pickle"
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_directory_with_only_a_pickle_says_so(tmp_path) -> None:
    """An HF directory holding pytorch_model.bin names it and how to convert."""
    (tmp_path / "config.json").write_text(
        '{"architectures": ["GPT2LMHeadModel"], "n_embd": 8, "n_layer": 1, '
        '"n_head": 2, "vocab_size": 4, "n_positions": 4}'
    )
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelFileError) as error:
        load_model(tmp_path)
    one_line(error, tmp_path, "pytorch_model.bin", "safe_serialization=True")


def test_bare_safetensors_file_asks_for_its_directory(tmp_path) -> None:
    """A lone .safetensors file has no config: ask for the directory."""
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path, "config.json")


# ---- broken GGUF files --------------------------------------------------------


@pytest.mark.parametrize(
    "content", [b"", b"GG", b"PK\x03\x04 a zip", b"hello world, not a model\n"]
)
def test_not_a_gguf_is_refused(content, tmp_path) -> None:
    """Empty, tiny and foreign files give one line naming the file."""
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path)


def test_bad_magic_says_not_gguf(tmp_path) -> None:
    """A file long enough to have a header but without the GGUF magic says so."""
    path = tmp_path / "model.gguf"
    path.write_bytes(b"ggjt" + bytes(64))
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path, "not a GGUF file")


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.2, 0.5, 0.999])
def test_truncated_gguf_is_refused(fraction, tmp_path) -> None:
    """A GGUF cut short (in its header, metadata or tensor data) is reported."""
    data = STORIES.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path, "truncated")


def test_vocabulary_only_gguf_is_refused() -> None:
    """llama.cpp's vocabulary-only GGUF (0 tensors) is not a model."""
    path = DATA / "gpt2" / "ggml-vocab-gpt-2.gguf"
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path, "no tensors")


def _stories_variant(path: Path, keys=None, weights=None, arch="llama", qtype=Q.F32):
    """Write stories260K with its keys or weights replaced, then load it."""
    base_keys, base_weights = stories_source()
    write_gguf(path, arch, keys or base_keys, weights or base_weights, qtype)
    return load_model(path)


def test_unknown_architecture_is_unsupported(tmp_path) -> None:
    """An architecture other than llama or gpt2 names the key and its value."""
    path = tmp_path / "f.gguf"
    with pytest.raises(UnsupportedModelError) as error:
        _stories_variant(path, arch="falcon")
    one_line(error, path, "general.architecture", "falcon")


def test_unsupported_tensor_type_names_tensor_and_type(tmp_path) -> None:
    """A Q5_0 tensor is refused by name, listing the types stepper reads."""
    path = tmp_path / "q5.gguf"
    with pytest.raises(UnsupportedModelError) as error:
        _stories_variant(path, qtype=Q.Q5_0)
    one_line(error, path, "token_embd.weight", "Q5_0", "Q4_K")


def test_missing_tensor_is_named(tmp_path) -> None:
    """A tensor the config needs but the file lacks is named."""
    weights = stories_source()[1]
    del weights["blk.3.ffn_up.weight"]
    path = tmp_path / "m.gguf"
    with pytest.raises(ModelFileError) as error:
        _stories_variant(path, weights=weights)
    one_line(error, path, "blk.3.ffn_up.weight", "missing")


def test_misshapen_tensor_is_named_with_both_shapes(tmp_path) -> None:
    """A tensor whose shape disagrees with the config names both shapes."""
    weights = stories_source()[1]
    weights["blk.1.attn_k.weight"] = weights["blk.1.attn_q.weight"]
    path = tmp_path / "s.gguf"
    with pytest.raises(ModelFileError) as error:
        _stories_variant(path, weights=weights)
    one_line(error, path, "blk.1.attn_k.weight", "[64, 64]", "[32, 64]")


def test_unknown_tensor_is_unsupported(tmp_path) -> None:
    """A tensor outside the architecture (e.g. rope_freqs) is refused by name."""
    weights = stories_source()[1]
    weights["rope_freqs.weight"] = np.ones(4, dtype=np.float32)
    path = tmp_path / "r.gguf"
    with pytest.raises(UnsupportedModelError) as error:
        _stories_variant(path, weights=weights)
    one_line(error, path, "rope_freqs.weight", "RoPE")


def test_missing_metadata_key_is_named(tmp_path) -> None:
    """A hyperparameter key that is absent is named."""
    keys = [k for k in stories_source()[0] if k[0] != "llama.block_count"]
    path = tmp_path / "k.gguf"
    with pytest.raises(ModelFileError) as error:
        _stories_variant(path, keys=keys)
    one_line(error, path, "llama.block_count")


def test_rope_scaling_is_refused(tmp_path) -> None:
    """RoPE scaling stepper does not implement is refused rather than run wrong."""
    scaling = ("llama.rope.scaling.type", "linear", gguf.GGUFValueType.STRING)
    path = tmp_path / "y.gguf"
    with pytest.raises(UnsupportedModelError) as error:
        _stories_variant(path, keys=[*stories_source()[0], scaling])
    one_line(error, path, "llama.rope.scaling.type", "linear")


def test_corrupt_metadata_string_names_the_key(tmp_path) -> None:
    """Invalid UTF-8 inside a metadata string is reported with its key."""
    data = bytearray(STORIES.read_bytes())
    at = data.index(b"llama", data.index(b"general.architecture"))
    data[at] = 0xFF
    path = tmp_path / "u.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    one_line(error, path, "general.architecture")
