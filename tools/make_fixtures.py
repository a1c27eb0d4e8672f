"""Write the Hugging Face reference fixtures under tests/fixtures/.

Run it with the separate reference virtualenv, which has PyTorch and transformers
(the project's own venv has neither, on purpose):

    python3.11 -m venv /work/torchvenv
    /work/torchvenv/bin/pip install torch==2.13.0 transformers sentencepiece \
        protobuf safetensors numpy gguf tokenizers
    /work/torchvenv/bin/python tools/make_fixtures.py

It writes, replacing what was there:

- hf-llama-stories260k/: the real stories260K weights as a transformers
  `LlamaForCausalLM` (grouped-query attention, tied embeddings, F32 safetensors),
  with Q/K rows moved from GGUF's adjacent RoPE pairs to Hugging Face's half-split
  layout, and a tokenizer.json converted from tests/data/tok512.model.
- hf-gpt2-tiny/: a seeded random `GPT2LMHeadModel` (64 wide, 2 layers, 4 heads)
  with a 512-token byte-level BPE trained on the fixed text below.
- gpt2-tiny-dtypes/: the same GPT-2 weights saved as BF16 and as F16.
- reference-*.npz: per model, `ids` (a prompt plus 64 greedy tokens), `logits`
  [len(ids), V] from transformers in float32 at every position, and `greedy` (the
  64 tokens greedy decoding chose).

Everything is deterministic; rerunning rewrites identical tensors.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaTokenizer,
    PreTrainedTokenizerFast,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures"
STORIES = ROOT / "stepper" / "models" / "stories260K.gguf"
TOK512 = ROOT / "tests" / "data" / "tok512.model"
N_GREEDY = 64
EXPECTED_STORY = "Once upon a time, there was a little girl named Lily"

# Training text for the tiny byte-level BPE: fixed, so the merges never change.
BPE_TEXT = """\
Once upon a time, in a small town by the sea, there lived a curious cat named Pip.
Every morning Pip walked along the harbour, counting boats and watching gulls.
The fishermen knew her well; they saved the smallest fish for her breakfast.
One stormy night the lighthouse keeper fell ill, and the lamp went dark.
Pip climbed the long spiral stairs, meowing loudly until the keeper's daughter woke.
Together they lit the lamp, and the boats found their way home through the rain.
Numbers, too: 1, 2, 3, 42, 1999, 2024 - and symbols like #, $, %, & and @.
Tabs\tand  double  spaces, "quotes", (brackets) and [lists] appear here as well.
Ünïcödé wörds, naïve cafés, 東京 and emoji 🙂 keep the byte fallback honest.
"""


def gguf_weights(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of an F32 GGUF as float32 numpy arrays, [out, in] layout."""
    reader = gguf.GGUFReader(path)
    return {t.name: np.array(t.data, dtype=np.float32) for t in reader.tensors}


def adjacent_to_half(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder Q or K rows from adjacent RoPE pairs to Hugging Face's half split."""
    # shape: [n_heads * D, C], same as w
    # GGUF pairs rows (2i, 2i+1) of each head; Hugging Face pairs rows (i, i + D/2).
    # So half-split row i is adjacent row 2i, and row i + D/2 is adjacent row 2i+1.
    rows, cols = w.shape
    d = rows // n_heads
    per_head = w.reshape(n_heads, d // 2, 2, cols)
    return per_head.transpose(0, 2, 1, 3).reshape(rows, cols).copy()


def llama_state_dict(w: dict[str, np.ndarray], cfg: LlamaConfig) -> dict:
    """GGUF stories260K tensors renamed to transformers' Llama keys."""
    sd = {
        "model.embed_tokens.weight": w["token_embd.weight"],
        "model.norm.weight": w["output_norm.weight"],
        "lm_head.weight": w["token_embd.weight"],
    }
    hf_of = {
        "attn_norm": "input_layernorm",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    for i in range(cfg.num_hidden_layers):
        for g, h in hf_of.items():
            sd[f"model.layers.{i}.{h}.weight"] = w[f"blk.{i}.{g}.weight"]
        q, k = w[f"blk.{i}.attn_q.weight"], w[f"blk.{i}.attn_k.weight"]
        sd[f"model.layers.{i}.self_attn.q_proj.weight"] = adjacent_to_half(
            q, cfg.num_attention_heads
        )
        sd[f"model.layers.{i}.self_attn.k_proj.weight"] = adjacent_to_half(
            k, cfg.num_key_value_heads
        )
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def stories_config() -> LlamaConfig:
    """stories260K's hyperparameters, as its GGUF metadata states them."""
    return LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=5,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=512,  # the length it was trained on
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        hidden_act="silu",
    )


def llama_tokenizer(out: Path) -> LlamaTokenizer:
    """Convert tok512.model to tokenizer.json (BOS added) and save it in `out`."""
    scratch = out / "_sp"
    scratch.mkdir()
    shutil.copy(TOK512, scratch / "tokenizer.model")
    tok = LlamaTokenizer.from_pretrained(scratch, add_bos_token=True)
    shutil.rmtree(scratch)
    tok.save_pretrained(out)
    _tidy_tokenizer_config(out, {"add_bos_token": True, "add_eos_token": False})
    return tok


def _tidy_tokenizer_config(out: Path, extra: dict) -> None:
    """Drop machine-specific keys from tokenizer_config.json and add `extra`."""
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    for key in ("is_local", "local_files_only"):
        config.pop(key, None)
    config.update(extra)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def make_llama() -> None:
    """hf-llama-stories260k/ and reference-llama.npz."""
    out = _fresh(OUT / "hf-llama-stories260k")
    cfg = stories_config()
    model = LlamaForCausalLM(cfg).eval()
    model.set_attn_implementation("eager")  # plain softmax(QK^T)V, no fused kernel
    model.load_state_dict(llama_state_dict(gguf_weights(STORIES), cfg), strict=True)
    model.save_pretrained(out, safe_serialization=True)
    tok = llama_tokenizer(out)
    ids = greedy(model, [cfg.bos_token_id])
    text = tok.decode(ids, skip_special_tokens=True)
    print(f"stories260k greedy: {text[:100]!r}")
    if not text.startswith(EXPECTED_STORY):
        sys.exit("the Hugging Face Llama does not reproduce stories260K: Q/K layout?")
    save_reference(model, ids, 1, OUT / "reference-llama.npz")


def bpe_tokenizer() -> Tokenizer:
    """A 512-token byte-level BPE trained on BPE_TEXT, GPT-2 style."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([BPE_TEXT] * 4, trainer=trainer)
    return tok


def gpt2_config(n_vocab: int, eos: int) -> GPT2Config:
    """The tiny GPT-2's hyperparameters."""
    return GPT2Config(
        vocab_size=n_vocab,
        n_positions=128,
        n_embd=64,
        n_layer=2,
        n_head=4,
        activation_function="gelu_new",
        # Wide weights spread the logits, so greedy decoding has no near-ties.
        initializer_range=0.2,
        bos_token_id=eos,
        eos_token_id=eos,
    )


def make_gpt2() -> None:
    """hf-gpt2-tiny/, gpt2-tiny-dtypes/ and reference-gpt2.npz."""
    out = _fresh(OUT / "hf-gpt2-tiny")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe_tokenizer(), eos_token="<|endoftext|>"
    )
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(20240601)
    model = GPT2LMHeadModel(gpt2_config(len(fast), eos)).eval()
    model.set_attn_implementation("eager")
    _spread_norms(model)
    model.save_pretrained(out, safe_serialization=True)
    fast.save_pretrained(out)
    _tidy_tokenizer_config(out, {})
    prompt = fast("Once upon a time")["input_ids"]
    ids = greedy(model, prompt)
    print(f"gpt2-tiny greedy: {fast.decode(ids)[:100]!r}")
    save_reference(model, ids, len(prompt), OUT / "reference-gpt2.npz")
    save_dtypes(model, _fresh(OUT / "gpt2-tiny-dtypes"))


def _spread_norms(model: GPT2LMHeadModel) -> None:
    """Give LayerNorms and biases random values so the test exercises them."""
    # transformers initialises norms to 1/0 and biases to 0, which would let a
    # loader that drops or swaps them pass unnoticed.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".bias") or ".ln_" in name:
                param.add_(0.1 * torch.randn_like(param))


def save_dtypes(model: GPT2LMHeadModel, out: Path) -> None:
    """The GPT-2 weights as BF16 and as F16 safetensors (no tied copy)."""
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        cast = {k: v.to(dtype).contiguous() for k, v in state.items()}
        save_file(cast, out / f"model-{name}.safetensors", metadata={"format": "pt"})


@torch.no_grad()
def greedy(model: torch.nn.Module, prompt: list[int]) -> list[int]:
    """`prompt` followed by N_GREEDY tokens chosen by argmax, one at a time."""
    ids = list(prompt)
    for _ in range(N_GREEDY):
        logits = model(torch.tensor([ids])).logits[0, -1]
        ids.append(int(torch.argmax(logits)))
    return ids


@torch.no_grad()
def save_reference(model: torch.nn.Module, ids: list[int], n_prompt: int, path: Path):
    """Logits at every position of `ids`, checked to reproduce the greedy tokens."""
    logits = model(torch.tensor([ids])).logits[0].float().numpy()
    chosen = logits[n_prompt - 1 : -1].argmax(axis=-1)
    assert chosen.tolist() == ids[n_prompt:], "teacher-forced argmax differs"
    top2 = np.sort(logits[n_prompt - 1 : -1], axis=-1)[:, -2:]
    print(
        f"{path.name}: smallest top-1/top-2 gap {np.min(top2[:, 1] - top2[:, 0]):.4f}"
    )
    np.savez_compressed(
        path,
        ids=np.array(ids, dtype=np.int64),
        logits=logits.astype(np.float32),
        greedy=np.array(ids[n_prompt:], dtype=np.int64),
    )


def _fresh(path: Path) -> Path:
    """An empty directory at `path` (its old contents removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def main() -> None:
    """Write every fixture."""
    torch.set_grad_enabled(False)
    OUT.mkdir(parents=True, exist_ok=True)
    make_llama()
    make_gpt2()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB under {OUT}")


if __name__ == "__main__":
    main()
