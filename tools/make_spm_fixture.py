"""Write tests/data/spm_vectors.json: SentencePiece's own ids for test strings.

The `sentencepiece` library is the reference for the `llama` tokenizer on the two
small vocabularies stepper tests (stories260K's 512 pieces and BabyLlama's 105). It
is not a test dependency: run this once after `pip install sentencepiece` and
commit the JSON. SentencePiece normalizes text (NFKC, collapsed and stripped
whitespace, split digits) where llama.cpp and stepper do not, so the strings are
chosen to be unchanged by that normalization; the script checks that they are.

    python tools/make_spm_fixture.py
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import sentencepiece

DATA = Path(__file__).parent.parent / "tests" / "data"
MODELS = {
    "stories260K": DATA / "tok512.model",
    "babyllama-tok105": DATA / "babyllama" / "tok105.model",
}
TEXTS = [
    "Once upon a time",
    "Lily and Ben went to the park.",
    "The café was naïve, Führer said!",
    "emoji 🦙 and 🚀 plus 😶\u200d🌫️",
    "世界你好",
    "שלום עולם",
    "مرحبا بالعالم",
    "line one\nline two\n\nend",
    "tab\tseparated\tvalues",
    "a",
    "<s>not special</s>",
    "Zebra-quokka_xylophone?",
]


def unchanged_by_normalization(text: str) -> bool:
    """Whether SentencePiece's normalizer would leave `text` as it is."""
    return (
        unicodedata.normalize("NFKC", text) == text
        and "  " not in text
        and text == text.strip(" ")
        and not any(char.isdigit() for char in text)
    )


def main() -> None:
    """Encode every text with every model and write the JSON fixture."""
    bad = [text for text in TEXTS if not unchanged_by_normalization(text)]
    if bad:
        raise SystemExit(f"SentencePiece would normalize {bad!r}; pick other text")
    fixture = {}
    for name, path in MODELS.items():
        processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
        fixture[name] = {text: processor.encode(text) for text in TEXTS}
    out = DATA / "spm_vectors.json"
    out.write_text(_one_line_per_text(fixture))
    print(f"wrote {out}")


def _one_line_per_text(fixture: dict[str, dict[str, list[int]]]) -> str:
    """The fixture as JSON with one text and its ids per line, for readable diffs."""
    models = []
    for name, cases in fixture.items():
        lines = [f"  {_json(text)}: {_json(ids)}" for text, ids in cases.items()]
        models.append(f" {_json(name)}: {{\n" + ",\n".join(lines) + "\n }")
    return "{\n" + ",\n".join(models) + "\n}\n"


def _json(value: object) -> str:
    """One JSON value on one line, non-ASCII text kept readable."""
    return json.dumps(value, ensure_ascii=False)


if __name__ == "__main__":
    main()
