"""Tokenizer tests: llama.cpp's published vectors, round trips and merge traces."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import gguf
import pytest

from stepper.tokenizer import Tokenizer, tokenizer_from_gguf

DATA = Path(__file__).parent / "data"
GPT2_GGUF = DATA / "gpt2" / "ggml-vocab-gpt-2.gguf"
PHI3_GGUF = DATA / "phi3" / "ggml-vocab-phi-3.gguf"
STORIES_GGUF = Path(__file__).parent.parent / "stepper" / "models" / "stories260K.gguf"
BABY_GGUF = DATA / "babyllama" / "babyllama-tok105.gguf"
SEPARATOR = "\n__ggml_vocab_test__\n"


def gguf_metadata(path: Path) -> dict[str, object]:
    """A GGUF file's metadata as plain Python values, as the loader hands it over."""
    reader = gguf.GGUFReader(path)
    return {
        key: field.contents()
        for key, field in reader.fields.items()
        if not key.startswith("GGUF.")
    }


@cache
def gguf_tokenizer(path: Path) -> Tokenizer:
    """The tokenizer of a GGUF file, built once per test session."""
    return tokenizer_from_gguf(gguf_metadata(path), path)


def vectors(path: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's test strings for a vocabulary with their expected ids."""
    texts = path.with_name(path.name + ".inp").read_text(encoding="utf-8")
    lines = path.with_name(path.name + ".out").read_text(encoding="utf-8")
    inputs = texts.split(SEPARATOR)
    assert inputs[-1] == ""  # the file ends with a separator
    outputs = lines.split("\n")
    return [
        (text, [int(i) for i in out.split()])
        for text, out in zip(inputs[:-1], outputs, strict=False)
    ]


@pytest.mark.parametrize("path", [GPT2_GGUF, PHI3_GGUF], ids=["gpt2", "phi3"])
def test_llama_cpp_vectors(path: Path) -> None:
    """Every one of llama.cpp's 46 strings encodes to exactly its published ids."""
    tokenizer = gguf_tokenizer(path)
    cases = vectors(path)
    assert len(cases) == 46
    wrong = [(t, tokenizer.encode(t, bos=False).ids, ids) for t, ids in cases]
    wrong = [case for case in wrong if case[1] != case[2]]
    assert not wrong, f"{len(wrong)} of 46 differ, first: {wrong[0]}"
