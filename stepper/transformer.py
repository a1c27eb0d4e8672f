"""The forward pass: a decoder-only transformer in numpy with a preallocated KV cache.

One `Transformer` runs one `Model`. Each call to `forward` appends tokens to the
context, reusing the keys and values cached for earlier positions, and returns a
`Capture` of the internals a user may want to inspect for the positions it added.
Two families are supported, chosen by `ModelConfig.arch`:

- "llama": RMSNorm, rotary position embeddings (RoPE), grouped-query attention and a
  SwiGLU feed-forward block; optional q/k/v biases (Qwen2).
- "gpt2": learned position embeddings, LayerNorm with bias, fused q/k/v projection
  and a tanh-approximated GELU feed-forward block.

Everything is float32. Weight names and layouts are those documented on `Model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stepper.config import ModelConfig
from stepper.errors import StepperError
from stepper.model import Model

# Smallest cache allocated up front; it doubles when full, up to the model's n_ctx.
_INITIAL_CACHE = 256
# Query rows of attention a Capture keeps from one call: a long prompt's full
# L x H x T x T matrix would dwarf the weights, and a screen shows far fewer rows.
CAPTURED_ROWS = 128


@dataclass(frozen=True)
class Capture:
    """What one forward call recorded about the positions it added.

    `attention[l]` holds layer l's attention weights for the new query rows over every
    cached key position, so its last axis grows with the context; of a long prompt
    only the last `CAPTURED_ROWS` query rows are kept, the first of which is at
    position `first_query`. `residuals` keeps the
    residual stream at the last position after the embedding and after each layer:
    enough to compute a logit lens on demand without keeping L x V numbers per step.
    """

    ids: tuple[int, ...]
    start: int  # position of ids[0]
    token_embeddings: np.ndarray  # [T, C]
    position_embeddings: np.ndarray | None  # [T, C], learned positions only
    attention: tuple[np.ndarray, ...]  # L x [H, T, S]
    residual_norms: np.ndarray  # [L+1, T]  L2 norm after embedding, then each layer
    residuals: np.ndarray  # [L+1, C]  at the last position
    logits: np.ndarray  # [V]  at the last position

    @property
    def first_query(self) -> int:
        """The position of the first query row kept in `attention`."""
        rows = self.attention[0].shape[1] if self.attention else len(self.ids)
        return self.start + len(self.ids) - rows


# The residual stream entering layer 0, the token embeddings and the learned
# position embeddings (None for RoPE models), each [T, C].
_Embedded = tuple[np.ndarray, np.ndarray, np.ndarray | None]


class KVCache:
    """Keys and values of every layer for the positions seen so far."""

    def __init__(self, config: ModelConfig, capacity: int) -> None:
        shape = (config.n_layers, config.n_kv_heads, capacity, config.head_dim)
        self.keys = np.zeros(shape, dtype=np.float32)  # [L, Hkv, S_max, D]
        self.values = np.zeros(shape, dtype=np.float32)  # [L, Hkv, S_max, D]
        self.length = 0

    @property
    def capacity(self) -> int:
        """How many positions fit before the cache must grow."""
        return self.keys.shape[2]

    def grow(self, capacity: int) -> None:
        """Reallocate to hold `capacity` positions, keeping what is cached."""
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = np.zeros(old.shape[:2] + (capacity,) + old.shape[3:], np.float32)
            new[:, :, : self.length] = old[:, :, : self.length]
            setattr(self, name, new)


class Transformer:
    """Runs a model token by token, keeping its KV cache between calls."""

    def __init__(self, model: Model, capacity: int | None = None) -> None:
        self.model = model
        self.config = cfg = model.config
        _column_major(model.weights)
        self.w = model.weights
        self.output = self.w.get("output.weight", self.w["token_embd.weight"])
        first = capacity or min(cfg.n_ctx, _INITIAL_CACHE)
        self.cache = KVCache(cfg, min(first, cfg.n_ctx))
        self.rope = _rope_tables(cfg, cfg.n_ctx) if cfg.arch == "llama" else None

    @property
    def length(self) -> int:
        """The number of positions in the context so far."""
        return self.cache.length

    def truncate(self, length: int) -> None:
        """Forget every position from `length` on; earlier ones are untouched."""
        self.cache.length = min(length, self.cache.length)

    def forward(self, ids: list[int]) -> Capture:
        """Append `ids` to the context and capture what happened inside."""
        start = self.cache.length
        rec = _Recorder(self.config, len(ids))
        x, tok, pos = self._run(ids, rec)
        return rec.finish(tuple(ids), start, tok, pos, self.logits(x[-1]))

    def forward_logits(self, ids: list[int]) -> np.ndarray:
        """Append `ids` to the context, capturing nothing: the last logits [V]."""
        x, _, _ = self._run(ids, None)
        return self.logits(x[-1])

    def _run(self, ids: list[int], rec: _Recorder | None) -> _Embedded:
        """Embed and run every layer, updating the cache: x, tok, pos, each [T, C]."""
        start = self.cache.length
        self._reserve(start + len(ids))
        x, tok, pos = self._embed(ids, start)
        if rec:
            rec.residual(0, x)
        for layer in range(self.config.n_layers):
            x = self._block(layer, x, start, rec)
            if rec:
                rec.residual(layer + 1, x)
        self.cache.length = start + len(ids)
        return x, tok, pos

    def logits(self, residual: np.ndarray) -> np.ndarray:
        """Final norm and classifier applied to residual rows: [..., C] -> [..., V]."""
        h = self._norm(residual, "output_norm")
        return h @ self.output.T

    def logit_lens(self, capture: Capture, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """What each layer's residual would predict: top-k ids and probs, [L+1, k]."""
        probs = _softmax(self.logits(capture.residuals))  # [L+1, V]
        # A partial sort finds the k largest; only those k are then ordered.
        part = np.argpartition(-probs, k - 1, axis=-1)[:, :k]  # [L+1, k]
        order = np.argsort(-np.take_along_axis(probs, part, -1), -1, kind="stable")
        top = np.take_along_axis(part, order, axis=-1)
        return top, np.take_along_axis(probs, top, axis=-1)

    def _reserve(self, needed: int) -> None:
        """Make room in the cache for `needed` positions, or refuse past n_ctx."""
        n_ctx = self.config.n_ctx
        if needed > n_ctx:
            raise StepperError(
                f"{self.model.name}: the context would reach {needed} tokens but the "
                f"model holds at most {n_ctx}; use a shorter prompt or fewer tokens"
            )
        if needed > self.cache.capacity:
            self.cache.grow(min(n_ctx, max(needed, 2 * self.cache.capacity)))

    def _embed(self, ids: list[int], start: int) -> _Embedded:
        """Token (and learned position) embeddings: x, tok, pos, each [T, C]."""
        vocab = self.config.n_vocab
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            raise StepperError(
                f"{self.model.name}: token id {bad[0]} is outside the vocabulary "
                f"(0..{vocab - 1}); choose an id the model knows"
            )
        tok = self.w["token_embd.weight"][ids]
        if self.config.arch != "gpt2":
            return tok, tok, None
        pos = self.w["position_embd.weight"][start : start + len(ids)]
        return tok + pos, tok, pos

    def _block(
        self, layer: int, x: np.ndarray, start: int, rec: _Recorder | None
    ) -> np.ndarray:
        """One transformer layer: attention then feed-forward, each residual: [T, C]."""
        p = f"blk.{layer}."
        h = self._norm(x, p + "attn_norm")
        x = x + self._attention(layer, h, start, rec)
        h = self._norm(x, p + "ffn_norm")
        return x + self._feed_forward(p, h)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        """RMSNorm (llama) or LayerNorm (gpt2) with the named weights: [T, C]."""
        eps, weight = self.config.norm_eps, self.w[name + ".weight"]
        if self.config.arch == "llama":
            ms = np.mean(x * x, axis=-1, keepdims=True)
            return x / np.sqrt(ms + eps) * weight
        mean = np.mean(x, axis=-1, keepdims=True)
        var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * weight + self.w[name + ".bias"]

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        """x @ W.T (+ b) for the named weight stored [out, in]: [T, out]."""
        y = x @ self.w[name + ".weight"].T
        bias = self.w.get(name + ".bias")
        return y if bias is None else y + bias

    def _qkv(self, p: str, h: np.ndarray) -> tuple[np.ndarray, ...]:
        """Query, key and value projections: [T, H*D], [T, Hkv*D], [T, Hkv*D]."""
        if self.config.arch == "gpt2":
            return tuple(np.split(self._linear(h, p + "attn_qkv"), 3, axis=-1))
        return tuple(self._linear(h, p + n) for n in ("attn_q", "attn_k", "attn_v"))

    def _attention(
        self, layer: int, h: np.ndarray, start: int, rec: _Recorder | None
    ) -> np.ndarray:
        """Causal self-attention over the cache plus the new rows: [T, C]."""
        cfg, p = self.config, f"blk.{layer}."
        T, D, Hkv = h.shape[0], cfg.head_dim, cfg.n_kv_heads
        q, k, v = self._qkv(p, h)
        q = q.reshape(T, cfg.n_heads, D).transpose(1, 0, 2)  # [H, T, D]
        k = k.reshape(T, Hkv, D).transpose(1, 0, 2)  # [Hkv, T, D]
        v = v.reshape(T, Hkv, D).transpose(1, 0, 2)  # [Hkv, T, D]
        if self.rope is not None:
            q, k = self._rotate(q, start), self._rotate(k, start)
        end = start + T
        self.cache.keys[layer, :, start:end] = k
        self.cache.values[layer, :, start:end] = v
        weights = self._weights(q, self.cache.keys[layer, :, :end], start)  # [H,T,S]
        if rec:
            rec.attention(layer, weights)
        group = cfg.n_heads // Hkv
        values = self.cache.values[layer, :, :end]  # [Hkv, S, D]
        out = weights.reshape(Hkv, group * T, end) @ values  # [Hkv, group*T, D]
        out = out.reshape(cfg.n_heads, T, D).transpose(1, 0, 2).reshape(T, -1)
        return self._linear(out, p + "attn_output")

    def _weights(self, q: np.ndarray, keys: np.ndarray, start: int) -> np.ndarray:
        """Softmaxed, causally masked attention weights: [H, T, S]."""
        H, T, D = q.shape
        Hkv, S = keys.shape[0], keys.shape[1]
        # Grouped-query attention: query head h reads key/value head h // group.
        grouped = q.reshape(Hkv, (H // Hkv) * T, D)
        scores = (grouped @ keys.transpose(0, 2, 1)).reshape(H, T, S)
        scores *= np.float32(1.0 / np.sqrt(D))
        if T > 1:
            future = np.arange(S)[None, :] > np.arange(start, start + T)[:, None]
            scores[:, future] = -np.inf
        return _softmax(scores, out=scores)

    def _rotate(self, x: np.ndarray, start: int) -> np.ndarray:
        """Apply RoPE to heads at positions start.. : [heads, T, D]."""
        assert self.rope is not None
        cos, sin = (t[start : start + x.shape[1]] for t in self.rope)  # [T, R/2]
        rot = cos.shape[-1] * 2
        if self.config.rope_pairs == "adjacent":
            a, b = x[..., 0:rot:2], x[..., 1:rot:2]
        else:
            a, b = x[..., : rot // 2], x[..., rot // 2 : rot]
        ra, rb = a * cos - b * sin, a * sin + b * cos
        out = x.copy()
        if self.config.rope_pairs == "adjacent":
            out[..., 0:rot:2], out[..., 1:rot:2] = ra, rb
        else:
            out[..., : rot // 2], out[..., rot // 2 : rot] = ra, rb
        return out

    def _feed_forward(self, p: str, h: np.ndarray) -> np.ndarray:
        """SwiGLU (llama) or GELU (gpt2) feed-forward block: [T, C]."""
        if self.config.arch == "llama":
            gate = self._linear(h, p + "ffn_gate")
            up = self._linear(h, p + "ffn_up")
            return self._linear(gate / (1.0 + np.exp(-gate)) * up, p + "ffn_down")
        return self._linear(_gelu(self._linear(h, p + "ffn_up")), p + "ffn_down")


class _Recorder:
    """Collects a Capture's pieces while the layers run."""

    def __init__(self, config: ModelConfig, n_tokens: int) -> None:
        self.layers: list[np.ndarray] = [np.empty(0)] * config.n_layers
        self.norms = np.empty((config.n_layers + 1, n_tokens), np.float32)
        self.last = np.empty((config.n_layers + 1, config.n_embd), np.float32)

    def residual(self, index: int, x: np.ndarray) -> None:
        """Note the residual stream after the embedding (0) or after a layer."""
        self.norms[index] = np.linalg.norm(x, axis=-1)
        self.last[index] = x[-1]

    def attention(self, layer: int, weights: np.ndarray) -> None:
        """Keep a layer's attention weights for the last few new query rows."""
        # Each layer's weights are a fresh array, so the common case needs no copy.
        rows = weights.shape[1]
        keep = weights if rows <= CAPTURED_ROWS else weights[:, -CAPTURED_ROWS:].copy()
        self.layers[layer] = keep

    def finish(
        self,
        ids: tuple[int, ...],
        start: int,
        tok: np.ndarray,
        pos: np.ndarray | None,
        logits: np.ndarray,
    ) -> Capture:
        """Assemble the Capture of this forward call."""
        return Capture(
            ids=ids,
            start=start,
            token_embeddings=tok.copy(),
            position_embeddings=None if pos is None else pos.copy(),
            attention=tuple(self.layers),
            residual_norms=self.norms,
            residuals=self.last,
            logits=logits,
        )


def _rope_tables(cfg: ModelConfig, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of every position's rotation angles: [n_pos, R/2] each."""
    rot = cfg.rope_dim or cfg.head_dim
    inv_freq = cfg.rope_theta ** (-np.arange(0, rot, 2, dtype=np.float64) / rot)
    angles = np.outer(np.arange(n_pos, dtype=np.float64), inv_freq)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _softmax(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis, stable for large logits and -inf masks."""
    e = np.subtract(x, np.max(x, axis=-1, keepdims=True), out=out)
    np.exp(e, out=e)
    e /= np.sum(e, axis=-1, keepdims=True)
    return e


def _column_major(weights: dict[str, np.ndarray]) -> None:
    """Store each matrix column-major, in place, one at a time.

    Shapes stay [out, in]; only the memory order changes, so that `W.T` is
    contiguous and BLAS runs its faster matrix-vector kernel (measured by
    benchmarks/bench_engine.py: 17-19 GB/s against 13-14 for the row-major
    layout). Converting one matrix at a time keeps the peak at one extra matrix.
    """
    for name, w in weights.items():
        if w.ndim == 2 and not w.flags.f_contiguous:
            weights[name] = np.asfortranarray(w)


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU with GPT-2's tanh approximation."""
    c = np.float32(np.sqrt(2.0 / np.pi))
    # x * x * x, not x**3: numpy calls pow() per element for a float32 cube.
    return 0.5 * x * (1.0 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))
