"""Engine benchmark: a GPT-2-124M-shaped model with random weights, four figures.

    python benchmarks/bench_engine.py [--rounds 50]

One run builds the model in numpy, interleaves every timed arm round by round (the
order rotates each round, so no arm always runs first) and prints:

1. decode latency per token at 64 tokens of context over the weight-read floor,
   the time to stream every float32 weight once (the fastest of two readers);
2. `Transformer.forward` (captures everything) over `forward_logits` (nothing);
3. decode latency at 1,000 tokens of context over latency at 16;
4. peak memory over the float32 weights plus the KV cache of 1,000 positions, for
   two workloads (stepping one token at a time, and a 1,000-token prompt), each in
   a fresh child process so that neither the other nor the timing can inflate it.

Ratios are medians of per-round ratios: both arms of a ratio ran in the same round,
which cancels the slow drift of a shared machine. Peak memory is Linux's accounting
of resident memory (`ru_maxrss`) above the child's RSS before it built any weight.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stepper.config import ModelConfig
from stepper.gguf_file import open_gguf, read_metadata
from stepper.model import Model
from stepper.tokenizer import Tokenizer, tokenizer_from_gguf
from stepper.transformer import Transformer

GPT2_124M = ModelConfig(
    arch="gpt2",
    n_layers=12,
    n_embd=768,
    n_heads=12,
    n_kv_heads=12,
    n_ff=3072,
    n_vocab=50257,
    n_ctx=1024,
    norm_eps=1e-5,
)
VOCAB = Path(__file__).resolve().parents[1] / "tests/data/gpt2/ggml-vocab-gpt-2.gguf"
SHORT, MEDIUM, LONG = 16, 64, 1000  # contexts, in tokens
MB = 1e6

Arm = Callable[[], float]  # runs once, returns the seconds that count
Times = dict[str, np.ndarray]  # seconds per arm, one entry per round


def gpt2_tokenizer() -> Tokenizer:
    """GPT-2's real byte-level BPE, read from the vocabulary-only GGUF in tests."""
    return tokenizer_from_gguf(read_metadata(open_gguf(VOCAB), VOCAB), VOCAB)


def weight_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight of a GPT-2 model with its [out, in] shape, tied classifier."""
    C = cfg.n_embd
    shapes = {
        "token_embd.weight": (cfg.n_vocab, C),
        "position_embd.weight": (cfg.n_ctx, C),
        "output_norm.weight": (C,),
        "output_norm.bias": (C,),
    }
    for layer in range(cfg.n_layers):
        shapes.update(layer_shapes(cfg, f"blk.{layer}."))
    return shapes


def layer_shapes(cfg: ModelConfig, prefix: str) -> dict[str, tuple[int, ...]]:
    """One layer's norms, fused q/k/v, attention output and feed-forward."""
    C, F = cfg.n_embd, cfg.n_ff
    matrices = {
        "attn_qkv": (3 * C, C),
        "attn_output": (C, C),
        "ffn_up": (F, C),
        "ffn_down": (C, F),
    }
    shapes: dict[str, tuple[int, ...]] = {}
    for norm in ("attn_norm", "ffn_norm"):
        shapes[f"{prefix}{norm}.weight"] = shapes[f"{prefix}{norm}.bias"] = (C,)
    for name, (out, inner) in matrices.items():
        shapes[f"{prefix}{name}.weight"] = (out, inner)
        shapes[f"{prefix}{name}.bias"] = (out,)
    return shapes


def random_weights(cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """float32 N(0, 0.02) weights, norm gains near 1; no float64 temporaries."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in weight_shapes(cfg).items():
        array = rng.standard_normal(shape, dtype=np.float32)
        array *= np.float32(0.02)
        if name.endswith("norm.weight"):
            array += np.float32(1.0)
        weights[name] = array
    return weights


def build_model(tokenizer: Tokenizer, seed: int) -> Model:
    """The GPT-2-124M-shaped model with random weights."""
    weights = random_weights(GPT2_124M, seed)
    return Model("gpt2-124m-random", None, GPT2_124M, weights, tokenizer)


def kv_bytes(cfg: ModelConfig, positions: int) -> int:
    """Bytes of float32 keys and values for `positions` tokens in every layer."""
    return 2 * cfg.n_layers * cfg.n_kv_heads * positions * cfg.head_dim * 4


def token_ids(cfg: ModelConfig, n: int, seed: int) -> list[int]:
    """`n` random token ids; the benchmark feeds ids, never text."""
    return np.random.default_rng(seed).integers(0, cfg.n_vocab, n).tolist()


def prefilled(model: Model, ids: list[int], chunk: int = 100) -> Transformer:
    """A transformer whose cache holds `ids`, filled a chunk at a time."""
    transformer = Transformer(model)
    for at in range(0, len(ids), chunk):
        logits = transformer.forward_logits(ids[at : at + chunk])
    assert np.isfinite(logits).all(), "random weights gave non-finite logits"
    return transformer


# Memory: one fresh child process per workload.


def current_rss() -> int:
    """Resident bytes of this process now (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status: peak memory needs Linux")


def peak_rss() -> int:
    """Largest resident bytes this process has had (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def step_to_long(model: Model, ids: list[int]) -> None:
    """The session's path: a short prompt, then one token per forward, captured."""
    transformer = Transformer(model)
    transformer.forward(ids[:SHORT])
    for token in ids[SHORT:LONG]:
        transformer.forward([token])  # only the latest Capture stays alive


def prompt_long(model: Model, ids: list[int]) -> None:
    """A LONG-token prompt in one captured forward call, Capture kept."""
    capture = Transformer(model).forward(ids[:LONG])
    assert np.isfinite(capture.logits).all()


WORKLOADS = {"step": step_to_long, "prompt": prompt_long}


def memory_child(workload: str, seed: int) -> dict[str, float]:
    """Run one workload from a clean process state and report its memory."""
    tokenizer = gpt2_tokenizer()
    baseline = current_rss()
    tracemalloc.start()
    model = build_model(tokenizer, seed)
    WORKLOADS[workload](model, token_ids(GPT2_124M, LONG, seed + 1))
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    weights = sum(w.nbytes for w in model.weights.values())
    return {
        "rss": peak_rss() - baseline,
        "traced": traced,
        "weights": weights,
        "kv": kv_bytes(GPT2_124M, LONG),
    }


def measure_memory(workload: str, seed: int) -> dict[str, float]:
    """Run `memory_child` in a fresh interpreter and read back its figures."""
    command = [sys.executable, __file__, "--memory-child", workload]
    command += ["--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


# Timing: arms that each return the seconds they took.


def timed(action: Callable[[], object]) -> float:
    """Seconds taken by one call of `action`."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def decode_arm(transformer: Transformer, token: int, capture: bool) -> Arm:
    """Decode one token on top of the cached context, then rewind to it."""
    length = transformer.length
    step = transformer.forward if capture else transformer.forward_logits

    def run() -> float:
        seconds = timed(lambda: step([token]))
        transformer.truncate(length)
        return seconds

    return run


def sum_arm(arrays: list[np.ndarray]) -> Arm:
    """Floor reader: numpy's SIMD pairwise sum over every weight (one thread)."""
    return lambda: timed(lambda: [np.add.reduce(a, axis=None) for a in arrays])


def self_dot_arm(arrays: list[np.ndarray]) -> Arm:
    """Floor reader: BLAS sdot of each flat weight with itself (one load each)."""
    flat = [a.reshape(-1) for a in arrays]
    return lambda: timed(lambda: [np.dot(f, f) for f in flat])


def matvec_arm(arrays: list[np.ndarray]) -> Arm:
    """The engine's kernel alone: row vector times W.T for every matrix."""
    pairs = [(np.ones((1, a.shape[1]), np.float32), a.T) for a in arrays if a.ndim == 2]
    return lambda: timed(lambda: [x @ wt for x, wt in pairs])


def timing_arms(model: Model, seed: int) -> dict[str, Arm]:
    """Every timed arm, keyed by a short name used in the report."""
    ids = token_ids(GPT2_124M, LONG + 1, seed + 1)
    arrays = list(model.weights.values())
    short, medium, long = (prefilled(model, ids[:n]) for n in (SHORT, MEDIUM, LONG))
    token = ids[LONG]
    return {
        "floor_sum": sum_arm(arrays),
        "floor_dot": self_dot_arm(arrays),
        "matvec_engine": matvec_arm(arrays),
        "logits_64": decode_arm(medium, token, capture=False),
        "capture_64": decode_arm(medium, token, capture=True),
        "capture_16": decode_arm(short, token, capture=True),
        "capture_1000": decode_arm(long, token, capture=True),
    }


def run_rounds(arms: dict[str, Arm], rounds: int, warmup: int = 2) -> Times:
    """Seconds per arm, one entry per round; the warm-up rounds are dropped."""
    names = list(arms)
    times: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        turn = index % len(names)
        for name in names[turn:] + names[:turn]:
            seconds = arms[name]()
            if index >= warmup:
                times[name].append(seconds)
    return {name: np.array(values) for name, values in times.items()}


# Report.


def verdict(name: str, value: float, target: float, detail: str) -> str:
    """One figure as 'name: value (target ≤ X) PASS/MISS  [raw figures]'."""
    status = "PASS" if value <= target else "MISS"
    return f"{name}: {value:.2f} (target ≤ {target:.2f}) {status}  [{detail}]"


def paired(times: Times, top: str, bottom: str) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile of the per-round ratio top / bottom."""
    ratio = times[top] / times[bottom]
    low, mid, high = np.percentile(ratio, [10, 50, 90])
    return float(mid), float(low), float(high)


def ms(times: Times, name: str) -> str:
    """An arm's median time in milliseconds."""
    return f"{np.median(times[name]) * 1e3:.1f} ms"


def time_report(times: Times, weight_bytes: int) -> list[str]:
    """Lines for the three timing figures, with every arm's raw median."""
    floor = min(("floor_dot", "floor_sum"), key=lambda n: np.median(times[n]))
    lines = [f"  {name:>13}: {ms(times, name)}" for name in times]
    lines.append(f"  floor reader: {floor}, {bandwidth(times, floor, weight_bytes)}")
    figures = [
        ("decode at 64 / weight-read floor", "logits_64", floor, 1.25),
        ("capture everything / capture nothing", "capture_64", "logits_64", 1.10),
        ("context 1000 / context 16", "capture_1000", "capture_16", 1.30),
    ]
    for label, top, bottom, target in figures:
        mid, low, high = paired(times, top, bottom)
        spread = f"per-round p10-p90 {low:.2f}-{high:.2f}"
        detail = f"{ms(times, top)} vs {ms(times, bottom)}; {spread}"
        lines.append(verdict(label, mid, target, detail))
    return lines


def bandwidth(times: Times, name: str, weight_bytes: int) -> str:
    """The read rate an arm's median implies over all the weights."""
    return f"{weight_bytes / np.median(times[name]) / 1e9:.1f} GB/s"


def memory_line(label: str, figures: dict[str, float]) -> str:
    """The peak-memory figure of one workload."""
    ideal = figures["weights"] + figures["kv"]
    detail = (
        f"peak RSS +{figures['rss'] / MB:.0f} MB, tracemalloc peak "
        f"{figures['traced'] / MB:.0f} MB; weights {figures['weights'] / MB:.0f} MB"
        f" + KV cache {figures['kv'] / MB:.1f} MB"
    )
    return verdict(label, figures["rss"] / ideal, 1.30, detail)


def blas_summary() -> str:
    """Which BLAS runs, with how many threads, and the OpenBLAS overrides seen."""
    overrides = ", ".join(
        f"{key}={os.environ.get(key, 'unset')}"
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
    )
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"BLAS: (pip install threadpoolctl to name it); {overrides}"
    pools = [
        f"{p['internal_api']} {p['version']} {p.get('architecture', '?')} kernel, "
        f"{p['num_threads']} thread(s)"
        for p in threadpool_info()
        if p["user_api"] == "blas"
    ]
    return f"BLAS: {'; '.join(pools)}; {overrides}"


def header(model: Model, rounds: int) -> list[str]:
    """What is measured and on what machine."""
    cfg, weights = model.config, model.weights
    nbytes = sum(w.nbytes for w in weights.values())
    return [
        f"model: GPT-2-124M shape, L={cfg.n_layers} C={cfg.n_embd} H={cfg.n_heads} "
        f"F={cfg.n_ff} V={cfg.n_vocab} n_ctx={cfg.n_ctx}, random float32",
        f"weights: {model.n_params:,} in {len(weights)} arrays, {nbytes / MB:.1f} MB",
        f"machine: {os.cpu_count()} CPUs; {blas_summary()}",
        f"timing: {rounds} rounds, arms interleaved in rotating order; {load()}",
    ]


def load() -> str:
    """The machine's load averages over 1, 5 and 15 minutes."""
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    """Parse the command line and run the benchmark (or one memory child)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="timed rounds")
    parser.add_argument("--seed", type=int, default=0, help="weights and token ids")
    parser.add_argument("--memory-child", choices=sorted(WORKLOADS), help="internal")
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.seed)))
        return
    memory = {name: measure_memory(name, args.seed) for name in WORKLOADS}
    model = build_model(gpt2_tokenizer(), args.seed)
    print("\n".join(header(model, args.rounds)), flush=True)
    times = run_rounds(timing_arms(model, args.seed), args.rounds)
    print(f"timing done, {load()}; medians per arm:")
    weight_bytes = sum(w.nbytes for w in model.weights.values())
    print("\n".join(time_report(times, weight_bytes)))
    label = "peak memory / (weights + KV cache)"
    print(memory_line(f"{label}, stepping to {LONG}", memory["step"]))
    print(memory_line(f"{label}, {LONG}-token prompt", memory["prompt"]))


if __name__ == "__main__":
    main()
