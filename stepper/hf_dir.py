"""Read a Hugging Face model directory (config.json, safetensors, tokenizer.json).

Architectures: `GPT2LMHeadModel`, and `LlamaForCausalLM` with those that reduce to
it (`MistralForCausalLM`, `Qwen2ForCausalLM` with its q/k/v biases; SmolLM is a
Llama). Checkpoint keys are renamed to GGUF's tensor names and GPT-2's Conv1D
weights, stored [in, out], are transposed to [out, in]. Llama-family Q/K weights
are kept in Hugging Face's half-split RoPE layout: `rope_pairs="half"` tells the
forward pass.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from stepper import tokenizer as tokenizers
from stepper.config import ModelConfig
from stepper.errors import ModelFileError, UnsupportedModelError
from stepper.model import Model
from stepper.safetensors_file import read_safetensors
from stepper.weight_names import check_weights

log = logging.getLogger(__name__)

LLAMA_LIKE = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")
ARCHITECTURES = ("GPT2LMHeadModel", *LLAMA_LIKE)

# Hugging Face key (after the model prefix) -> GGUF name, `{i}` for the layer.
GPT2_NAMES = {
    "wte.weight": "token_embd.weight",
    "wpe.weight": "position_embd.weight",
    "ln_f.weight": "output_norm.weight",
    "ln_f.bias": "output_norm.bias",
    "h.{i}.ln_1.{p}": "blk.{i}.attn_norm.{p}",
    "h.{i}.attn.c_attn.{p}": "blk.{i}.attn_qkv.{p}",
    "h.{i}.attn.c_proj.{p}": "blk.{i}.attn_output.{p}",
    "h.{i}.ln_2.{p}": "blk.{i}.ffn_norm.{p}",
    "h.{i}.mlp.c_fc.{p}": "blk.{i}.ffn_up.{p}",
    "h.{i}.mlp.c_proj.{p}": "blk.{i}.ffn_down.{p}",
    "lm_head.weight": "output.weight",
}
LLAMA_NAMES = {
    "embed_tokens.weight": "token_embd.weight",
    "norm.weight": "output_norm.weight",
    "layers.{i}.input_layernorm.weight": "blk.{i}.attn_norm.weight",
    "layers.{i}.self_attn.q_proj.{p}": "blk.{i}.attn_q.{p}",
    "layers.{i}.self_attn.k_proj.{p}": "blk.{i}.attn_k.{p}",
    "layers.{i}.self_attn.v_proj.{p}": "blk.{i}.attn_v.{p}",
    "layers.{i}.self_attn.o_proj.{p}": "blk.{i}.attn_output.{p}",
    "layers.{i}.post_attention_layernorm.weight": "blk.{i}.ffn_norm.weight",
    "layers.{i}.mlp.gate_proj.{p}": "blk.{i}.ffn_gate.{p}",
    "layers.{i}.mlp.up_proj.{p}": "blk.{i}.ffn_up.{p}",
    "layers.{i}.mlp.down_proj.{p}": "blk.{i}.ffn_down.{p}",
    "lm_head.weight": "output.weight",
}
# Buffers some checkpoints carry that are recomputed, not learned: skip them.
IGNORED = re.compile(r"(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$")
# GPT-2's Conv1D layers store [in, out]; these GGUF names need a transpose.
CONV1D = ("attn_qkv.weight", "attn_output.weight", "ffn_up.weight", "ffn_down.weight")


def read_json(path: Path, required: bool = True) -> dict[str, object]:
    """A JSON object from a file, or {} for an optional file that is absent."""
    if not path.is_file():
        if required:
            raise ModelFileError(
                f"{path}: missing; a Hugging Face model directory needs it, save "
                "the model with save_pretrained or download the whole repository"
            )
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFileError(
            f"{path}: not valid JSON ({error}); fix or replace it"
        ) from None
    if not isinstance(value, dict):
        raise ModelFileError(
            f"{path}: expected a JSON object at the top level; fix or replace it"
        )
    return value


def architecture(hf: Mapping[str, object], path: Path) -> str:
    """The one architecture named in config.json, if stepper runs it."""
    names = hf.get("architectures") or []
    arch = names[0] if isinstance(names, list) and len(names) == 1 else names
    if arch not in ARCHITECTURES:
        raise UnsupportedModelError(
            f"{path}: architectures is {arch!r}; stepper runs "
            f"{', '.join(ARCHITECTURES)}, use one of those"
        )
    return str(arch)


def _get(hf: Mapping[str, object], key: str, path: Path, default: object = None) -> int:
    """A positive integer from config.json, or a one-line error naming the key."""
    value = hf.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelFileError(
            f"{path}: key {key!r} is {value!r}, expected a positive integer; "
            "fix config.json or download it again"
        )
    return value


def _gpt2_config(hf: Mapping[str, object], path: Path) -> ModelConfig:
    """ModelConfig of a GPT-2 config.json."""
    _require(hf, path, "activation_function", "gelu_new", "gelu_pytorch_tanh")
    _require(hf, path, "scale_attn_by_inverse_layer_idx", False)
    _require(hf, path, "scale_attn_weights", True)
    c = _get(hf, "n_embd", path)
    heads = _get(hf, "n_head", path)
    return ModelConfig(
        arch="gpt2",
        n_layers=_get(hf, "n_layer", path),
        n_embd=c,
        n_heads=heads,
        n_kv_heads=heads,
        n_ff=4 * c if hf.get("n_inner") is None else _get(hf, "n_inner", path),
        n_vocab=_get(hf, "vocab_size", path),
        n_ctx=_get(hf, "n_positions", path),
        norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),  # type: ignore[arg-type]
    )


def _require(hf: Mapping[str, object], path: Path, key: str, *allowed: object) -> None:
    """Refuse a config value that would change the numbers in a way not modelled.

    The first allowed value is the config class's default, used when the key is
    absent.
    """
    value = hf.get(key, allowed[0])
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise UnsupportedModelError(
            f"{path}: {key} is {value!r}; stepper implements only {shown}"
        )


def _rope_theta(hf: Mapping[str, object], path: Path) -> float:
    """RoPE base, refusing any scaling (it would change every rotation)."""
    # transformers 5 writes rope settings under rope_parameters; 4.x at the top
    # level with rope_scaling. Either may carry a scaling type.
    theta = hf.get("rope_theta", 10000.0)
    for key in ("rope_parameters", "rope_scaling"):
        params = hf.get(key)
        kind = _scaling_kind(params)
        if kind not in (None, "default"):
            raise UnsupportedModelError(
                f"{path}: {key} asks for {kind!r} RoPE scaling; stepper implements "
                "plain RoPE only, use a model without rope scaling"
            )
        if isinstance(params, dict):
            theta = params.get("rope_theta", theta)
    return float(theta)  # type: ignore[arg-type]


def _scaling_kind(params: object) -> object:
    """The RoPE scaling type a rope_parameters or rope_scaling entry asks for."""
    if isinstance(params, dict):
        return params.get("rope_type", params.get("type"))
    return params


def _context(hf: Mapping[str, object], path: Path) -> int:
    """Longest context, capped at a sliding attention window.

    Within its window a sliding-window model attends exactly like full attention, so
    capping the context keeps every number right; past it stepper would be wrong.
    """
    n_ctx = _get(hf, "max_position_embeddings", path)
    window = hf.get("sliding_window")
    uses_window = hf.get("use_sliding_window", True)
    if isinstance(window, int) and uses_window and 0 < window < n_ctx:
        log.info("%s: context capped at the sliding window of %d", path, window)
        return window
    return n_ctx


def _llama_config(hf: Mapping[str, object], path: Path) -> ModelConfig:
    """ModelConfig of a Llama, Mistral or Qwen2 config.json."""
    _require(hf, path, "hidden_act", "silu")
    c, heads = _get(hf, "hidden_size", path), _get(hf, "num_attention_heads", path)
    if hf.get("head_dim") not in (None, c // heads):
        raise UnsupportedModelError(
            f"{path}: head_dim is {hf['head_dim']}, not hidden_size / "
            f"num_attention_heads = {c // heads}; stepper needs head width C / H"
        )
    return ModelConfig(
        arch="llama",
        n_layers=_get(hf, "num_hidden_layers", path),
        n_embd=c,
        n_heads=heads,
        n_kv_heads=_get(hf, "num_key_value_heads", path, heads),
        n_ff=_get(hf, "intermediate_size", path),
        n_vocab=_get(hf, "vocab_size", path),
        n_ctx=_context(hf, path),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)),  # type: ignore[arg-type]
        rope_theta=_rope_theta(hf, path),
        rope_pairs="half",
    )


def config_from_hf(hf: Mapping[str, object], path: Path) -> ModelConfig:
    """Build the model's configuration from a parsed config.json."""
    if architecture(hf, path) == "GPT2LMHeadModel":
        return _gpt2_config(hf, path)
    return _llama_config(hf, path)


def weight_files(directory: Path) -> list[Path]:
    """The safetensors file, or every shard the index names, in order."""
    single, index = (
        directory / "model.safetensors",
        directory / "model.safetensors.index.json",
    )
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelFileError(f"{index}: 'weight_map' is missing or empty")
        return [directory / name for name in sorted(set(weight_map.values()))]
    pickled = sorted(directory.glob("*.bin")) + sorted(directory.glob("*.pt"))
    fix = f"found {pickled[0].name}, a pickled checkpoint; " if pickled else ""
    raise ModelFileError(
        f"{directory}: no model.safetensors or model.safetensors.index.json; {fix}"
        "save the model with save_pretrained(dir, safe_serialization=True)"
    )


def read_tensors(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of the directory's weight file(s), by Hugging Face key."""
    tensors: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for path in weight_files(directory):
        if not path.is_file():
            raise ModelFileError(
                f"{path}: a shard named in model.safetensors.index.json is missing; "
                "download the whole repository"
            )
        more, more_dtypes = read_safetensors(path)
        tensors.update(more)
        dtypes.update(more_dtypes)
    return tensors, dtypes


def _patterns(table: Mapping[str, str]) -> list[tuple[re.Pattern[str], str]]:
    """Compile `{i}`/`{p}` templates into regexes paired with their GGUF template."""
    compiled = []
    for hf_name, gguf_name in table.items():
        pattern = re.escape(hf_name).replace(r"\{i\}", r"(?P<i>\d+)")
        pattern = pattern.replace(r"\{p\}", r"(?P<p>weight|bias)")
        compiled.append((re.compile(pattern + "$"), gguf_name))
    return compiled


def gguf_name(key: str, patterns: list[tuple[re.Pattern[str], str]]) -> str | None:
    """The GGUF name for a Hugging Face key with its model prefix removed."""
    for pattern, template in patterns:
        match = pattern.match(key)
        if match:
            return template.format(**match.groupdict())
    return None


def rename(
    tensors: Mapping[str, np.ndarray], arch: str, source: Path
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Tensors under GGUF names in [out, in] layout, and HF key -> GGUF name."""
    gpt2 = arch == "GPT2LMHeadModel"
    patterns = _patterns(GPT2_NAMES if gpt2 else LLAMA_NAMES)
    prefix = "transformer." if gpt2 else "model."
    weights: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    for key, array in tensors.items():
        if IGNORED.search(key):
            continue
        name = gguf_name(key.removeprefix(prefix), patterns)
        if name is None:
            raise UnsupportedModelError(
                f"{source}: tensor {key!r} has no place in a plain {arch}; stepper "
                "cannot run this variant, use a standard checkpoint"
            )
        if gpt2 and name.endswith(CONV1D):
            array = np.ascontiguousarray(array.T)
        weights[name], names[key] = array, name
    return weights, names


def _tied(hf: Mapping[str, object], arch: str) -> bool:
    """Whether config.json ties the classifier to the token embedding."""
    # An absent key means the config class's default: GPT-2 ties, Llama does not.
    return bool(hf.get("tie_word_embeddings", arch == "GPT2LMHeadModel"))


def _classifier(weights: dict[str, np.ndarray], tied: bool, directory: Path) -> None:
    """Drop a tied classifier's copy; insist on an untied one being present."""
    if tied:
        weights.pop("output.weight", None)
    elif "output.weight" not in weights:
        raise ModelFileError(
            f"{directory}: tensor 'lm_head.weight' is missing and config.json does "
            "not tie it to the embedding; download the whole checkpoint"
        )


def load_hf_dir(directory: Path, name: str | None = None) -> Model:
    """Load a Hugging Face model directory into float32 weights under GGUF names."""
    hf = read_json(directory / "config.json")
    config = config_from_hf(hf, directory / "config.json")
    arch = architecture(hf, directory)
    tensors, dtypes = read_tensors(directory)
    weights, names = rename(tensors, arch, directory)
    _classifier(weights, _tied(hf, arch), directory)
    labels = {gguf: key for key, gguf in names.items()}
    check_weights(weights, config, str(directory), labels)
    tokenizer = _tokenizer(directory, hf)
    types = {names[key]: dtypes[key] for key in names}
    return Model(
        name=name or directory.name,
        source=directory,
        config=config,
        weights=weights,
        tokenizer=tokenizer,
        tensor_types=types,
    )


def _tokenizer(directory: Path, hf: Mapping[str, object]) -> tokenizers.Tokenizer:
    """The directory's tokenizer.json, with BOS/EOS ids filled in where missing."""
    if not (directory / "tokenizer.json").is_file():
        raise ModelFileError(
            f"{directory / 'tokenizer.json'}: missing; stepper reads the fast "
            "tokenizer file, save it with the tokenizer's save_pretrained"
        )
    tokenizer = tokenizers.tokenizer_from_hf(directory)
    generation = read_json(directory / "generation_config.json", required=False)
    for attr, key in (("bos_id", "bos_token_id"), ("eos_id", "eos_token_id")):
        if getattr(tokenizer, attr) is None:
            setattr(tokenizer, attr, _first_id(generation.get(key, hf.get(key))))
    return tokenizer


def _first_id(value: object) -> int | None:
    """A token id from config, where EOS may be a list of ids (the first is kept)."""
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else None
