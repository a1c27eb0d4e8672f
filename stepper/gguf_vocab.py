"""What the two GGUF tokenizers share: reading `tokenizer.ggml.*` and special tokens.

GGUF marks every token with a type (`tokenizer.ggml.token_type`). Following
llama.cpp, user-defined tokens are cut out of the text before BPE always, and
control tokens only when the caller asks for special tokens to be parsed. The
lstrip/rstrip flags llama.cpp sets on some special tokens by model name (Phi-3's
`<|end|>` eats the spaces after it) are not applied: text around a special token
keeps its spaces, so such prompts can differ from llama.cpp by a space token.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from enum import IntEnum
from pathlib import Path

from stepper.bpe import Span, TraceBuilder, merge_word
from stepper.errors import ModelFileError
from stepper.tokenizer import Encoding, Tokenizer

_NO_TOKEN = (-1, 0xFFFFFFFF)  # how converters write "this special token is absent"
_RECONVERT = "convert the model again with llama.cpp's convert_hf_to_gguf.py"


class TokenType(IntEnum):
    """The values of `tokenizer.ggml.token_type`."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


class GgufMetadata:
    """Typed reads of tokenizer metadata that fail with one-line errors."""

    def __init__(self, metadata: Mapping[str, object], path: Path) -> None:
        self.metadata = metadata
        self.path = path

    def error(self, key: str, problem: str, fix: str = _RECONVERT) -> ModelFileError:
        """The error for a bad value at `key`."""
        return ModelFileError(f"{self.path}: {key} {problem}; {fix}")

    def strings(self, key: str) -> list[str]:
        """A required array of strings."""
        value = self.metadata.get(key)
        if value is None:
            raise self.error(key, "is missing")
        if not isinstance(value, Sequence) or not all(
            isinstance(v, str) for v in value
        ):
            raise self.error(key, "is not an array of strings")
        return list(value)

    def numbers(self, key: str, count: int, default: float) -> list[float]:
        """An optional array of `count` numbers, `default` everywhere when absent."""
        value = self.metadata.get(key)
        if value is None:
            return [default] * count
        values = value.tolist() if hasattr(value, "tolist") else value
        if not isinstance(values, list) or len(values) != count:
            size = len(values) if isinstance(values, list) else "no"
            raise self.error(key, f"has {size} entries for {count} tokens")
        return values

    def token_id(self, key: str, count: int, default: int | None = None) -> int | None:
        """An optional token id, None when absent or marked absent."""
        value = self.metadata.get(key, default)
        if value is None or value in _NO_TOKEN:
            return None
        if not isinstance(value, int) or not 0 <= value < count:
            raise self.error(key, f"is {value!r}, not a token id below {count}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        """An optional boolean."""
        value = self.metadata.get(key, default)
        if not isinstance(value, bool | int):
            raise self.error(key, f"is {value!r}, not true or false")
        return bool(value)


class GgufTokenizer(Tokenizer):
    """A BPE tokenizer whose tokens, token types and special ids come from GGUF."""

    def __init__(self, tokens: list[str], types: list[int]) -> None:
        self.tokens = tokens
        self.types = types
        # Later duplicates win, as in llama.cpp's own token-to-id table.
        self.ids = {token: i for i, token in enumerate(tokens)}
        self._patterns: dict[bool, re.Pattern[str] | None] = {}

    def read_special_ids(
        self, meta: GgufMetadata, add_bos: bool, unk: int | None
    ) -> None:
        """Set BOS, EOS, UNK and whether BOS is added, from the metadata."""
        n = len(self.tokens)
        self.bos_id = meta.token_id("tokenizer.ggml.bos_token_id", n)
        self.eos_id = meta.token_id("tokenizer.ggml.eos_token_id", n)
        self.unk_id = meta.token_id("tokenizer.ggml.unknown_token_id", n, unk)
        self.add_bos = meta.flag("tokenizer.ggml.add_bos_token", add_bos)

    @property
    def vocab_size(self) -> int:
        """V, the number of token ids."""
        return len(self.tokens)

    def piece(self, token_id: int) -> str:
        """The token as the vocabulary spells it."""
        return self.tokens[token_id]

    def is_special(self, token_id: int) -> bool:
        """Control, user-defined and unknown tokens are special."""
        return self.types[token_id] in _SPECIAL_TYPES

    @abstractmethod
    def _words(self, text: str, start: int, after_special: bool) -> Iterator[Word]:
        """The first pieces and their spans of each word in a plain-text fragment."""

    @abstractmethod
    def _priority(self, left: str, right: str) -> float | None:
        """How soon `left` and `right` merge (lower first); None if never."""

    def _piece_id(self, piece: str) -> int:
        """The id of a final piece; pieces come from the vocabulary or the UNK."""
        return self.ids[piece]

    def _encode_text(self, text: str, special: bool) -> Encoding:
        """Encode plain fragments with BPE and special-token fragments directly."""
        out = TraceBuilder()
        after_special = True
        for start, end, token_id in self._fragments(text, special):
            if token_id is not None:
                out.add_token(token_id, self.tokens[token_id], (start, end))
                after_special = True
                continue
            for pieces, spans in self._words(text[start:end], start, after_special):
                merged = merge_word(pieces, spans, self._priority)
                out.add_word(merged, pieces, self._piece_id)
            after_special = False
        return out.encoding()

    def _fragments(
        self, text: str, special: bool
    ) -> Iterator[tuple[int, int, int | None]]:
        """Spans of plain text (id None) and of special tokens (their id)."""
        pattern = self._special_pattern(special)
        start = 0
        for match in pattern.finditer(text) if pattern else ():
            if match.start() > start:
                yield start, match.start(), None
            yield match.start(), match.end(), self.ids[match.group()]
            start = match.end()
        if start < len(text):
            yield start, len(text), None

    def _special_pattern(self, special: bool) -> re.Pattern[str] | None:
        """One regex matching every token to cut out, longest first."""
        if special not in self._patterns:
            kinds = _SPECIAL_TYPES if special else {TokenType.USER_DEFINED}
            texts = {
                t for t, k in zip(self.tokens, self.types, strict=True) if k in kinds
            }
            ordered = sorted((t for t in texts if t), key=len, reverse=True)
            joined = "|".join(map(re.escape, ordered))
            self._patterns[special] = re.compile(joined) if ordered else None
        return self._patterns[special]


Word = tuple[list[str], list[Span]]
_SPECIAL_TYPES = {TokenType.UNKNOWN, TokenType.CONTROL, TokenType.USER_DEFINED}
