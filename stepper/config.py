"""The hyperparameters of a model, independent of the file it came from."""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and numerical choices that define one transformer.

    `arch` is "llama" (RMSNorm, RoPE, SwiGLU, grouped-query attention) or "gpt2"
    (learned positions, LayerNorm with bias, tanh GELU). `rope_pairs` says which
    dimensions RoPE rotates together: "adjacent" (x[2i], x[2i+1]) as GGUF stores
    Llama weights, or "half" (x[i], x[i + D/2]) as Hugging Face checkpoints do.
    """

    arch: Literal["llama", "gpt2"]
    n_layers: int  # L
    n_embd: int  # C
    n_heads: int  # H
    n_kv_heads: int  # Hkv
    n_ff: int  # F
    n_vocab: int  # V
    n_ctx: int  # longest context the model was built for
    norm_eps: float
    rope_theta: float = 10000.0
    rope_dim: int = 0  # dimensions of each head that RoPE rotates; 0 means all
    rope_pairs: Literal["adjacent", "half"] = "adjacent"

    @property
    def head_dim(self) -> int:
        """D, the width of one attention head."""
        return self.n_embd // self.n_heads
