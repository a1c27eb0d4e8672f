"""Turn a model reference (built-in name, `.gguf` path or Hugging Face directory) into
a `Model`, and describe a loaded model for `stepper inspect`."""

from __future__ import annotations

from collections import Counter
from importlib import resources
from pathlib import Path

from stepper.errors import ModelFileError
from stepper.gguf_file import load_gguf
from stepper.hf_dir import load_hf_dir
from stepper.model import Model

# Built-in name -> file shipped inside the package, under stepper/models/.
BUILTIN_MODELS: dict[str, str] = {"stories260k": "stories260K.gguf"}

# Pickle-based checkpoints: unpickling runs whatever code the file names.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def builtin_names() -> str:
    """The built-in model names, for error messages and help."""
    return ", ".join(sorted(BUILTIN_MODELS))


def load_model(ref: str | Path) -> Model:
    """Load a model from a built-in name, a `.gguf` file or a Hugging Face directory.

    A built-in name wins over a file of the same name in the current directory;
    write `./stories260k` to mean the file.
    """
    if isinstance(ref, str) and ref.lower() in BUILTIN_MODELS:
        return _load_builtin(ref.lower())
    path = Path(ref).expanduser()
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(refuse_pickle(path))
    if not path.exists():
        raise ModelFileError(
            f"{path}: no such file or directory; pass a .gguf file, a Hugging Face "
            f"directory or a built-in model ({builtin_names()})"
        )
    return _load_path(path)


def _load_path(path: Path) -> Model:
    """Load an existing file or directory by what it is."""
    if path.suffix.lower() == ".safetensors":
        raise ModelFileError(
            f"{path}: a bare safetensors file has no configuration; pass the "
            "directory that holds it with its config.json and tokenizer.json"
        )
    if path.is_dir():
        return load_hf_dir(path)
    return load_gguf(path)


def refuse_pickle(path: Path) -> str:
    """The message for a pickled checkpoint: why it is refused and how to convert."""
    return (
        f"{path}: pickled checkpoints ({', '.join(PICKLE_SUFFIXES)}) are refused "
        "because loading one can run arbitrary code; convert it to safetensors with "
        "transformers' save_pretrained(dir, safe_serialization=True), or to GGUF "
        "with llama.cpp's convert_hf_to_gguf.py"
    )


def _load_builtin(name: str) -> Model:
    """Load a model shipped inside the package (works from a wheel install too)."""
    resource = resources.files("stepper") / "models" / BUILTIN_MODELS[name]
    # as_file gives the real path of an installed file (and a temporary copy only
    # for a zipped install), which GGUFReader needs to memory-map it.
    with resources.as_file(resource) as path:
        if not path.is_file():
            raise ModelFileError(
                f"{path}: the built-in model {name!r} is missing from the "
                "installation; reinstall stepper"
            )
        return load_gguf(path, name)


_NORMS = {"llama": "RMSNorm", "gpt2": "LayerNorm"}


def describe(model: Model) -> list[tuple[str, str]]:
    """Label/value rows that summarise a model, in display order.

    The sha256 row hashes the model's files on first use, which takes a few
    seconds per GB.
    """
    cfg = model.config
    return [
        ("name", model.name),
        ("architecture", cfg.arch),
        ("layers", str(cfg.n_layers)),
        ("width", str(cfg.n_embd)),
        ("heads", f"{cfg.n_heads} query, {cfg.n_kv_heads} key/value"),
        ("head width", str(cfg.head_dim)),
        ("feed-forward width", str(cfg.n_ff)),
        ("vocabulary", str(cfg.n_vocab)),
        ("context", str(cfg.n_ctx)),
        ("positions", _positions(model)),
        ("norm", f"{_NORMS[cfg.arch]}, eps {cfg.norm_eps:g}"),
        ("parameters", f"{model.n_params:,}"),
        ("tensor types", _type_counts(model.tensor_types)),
        ("tokenizer", _tokenizer_kind(model)),
        ("BOS / EOS", _special_tokens(model)),
        ("source", str(model.source) if model.source else "(built in code)"),
        ("sha256", model.sha256),
    ]


def _positions(model: Model) -> str:
    """How positions enter the model: RoPE settings or learned embeddings."""
    cfg = model.config
    if cfg.arch == "gpt2":
        return "learned position embeddings"
    dims = cfg.rope_dim or cfg.head_dim
    return (
        f"RoPE, theta {cfg.rope_theta:g}, {dims} of {cfg.head_dim} dims, "
        f"{cfg.rope_pairs} pairs"
    )


def _type_counts(types: dict[str, str]) -> str:
    """Tensor types with how many tensors of each, most common first."""
    counts = Counter(types.values())
    return ", ".join(f"{kind} x{n}" for kind, n in counts.most_common()) or "-"


def _tokenizer_kind(model: Model) -> str:
    """The tokenizer's kind and vocabulary size."""
    tok = model.tokenizer
    return f"{getattr(tok, 'kind', type(tok).__name__)}, {tok.vocab_size} tokens"


def _special_tokens(model: Model) -> str:
    """BOS and EOS ids with their spellings, and whether BOS is added."""
    tok = model.tokenizer
    parts = []
    for label, token_id in (("BOS", tok.bos_id), ("EOS", tok.eos_id)):
        shown = "none" if token_id is None else f"{token_id} {tok.piece(token_id)!r}"
        parts.append(f"{label} {shown}")
    added = "added" if tok.add_bos else "not added"
    return f"{', '.join(parts)} (BOS {added})"
