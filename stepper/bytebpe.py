"""The `gpt2` GGUF tokenizer: byte-level BPE with merge ranks.

Text is split into words by GPT-2's pattern, each word's UTF-8 bytes are spelt as
printable characters (a space is `Ġ`), and pairs merge in the order of
`tokenizer.ggml.merges`, the earliest-learned pair first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import regex

from stepper.errors import UnsupportedModelError
from stepper.gguf_vocab import GgufMetadata, GgufTokenizer, TokenType, Word

# GPT-2's word split: English contractions, letters, digits, other symbols, each
# optionally led by one space, and runs of whitespace that leave the last space to
# lead the next word.
GPT2_SPLIT = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)
# `tokenizer.ggml.pre` values that mean GPT-2's own split.
GPT2_PRE = (None, "gpt-2", "default")


def _byte_alphabet() -> list[str]:
    """The printable character that spells each byte 0..255 in byte-level BPE."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars: list[str] = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            # Unprintable bytes take the code points after U+00FF, in byte order.
            chars.append(chr(0x100 + shifted))
            shifted += 1
    return chars


BYTE_TO_CHAR = _byte_alphabet()
CHAR_TO_BYTE = {char: byte for byte, char in enumerate(BYTE_TO_CHAR)}


def bytes_of(piece: str) -> bytes:
    """The bytes a byte-level piece spells; characters outside it as UTF-8."""
    if all(char in CHAR_TO_BYTE for char in piece):
        return bytes(CHAR_TO_BYTE[char] for char in piece)
    return piece.encode()


class ByteBpeTokenizer(GgufTokenizer):
    """Byte-level BPE over a GGUF vocabulary and merge list."""

    kind = "gpt2 (byte-level BPE)"

    def __init__(
        self, tokens: list[str], types: list[int], ranks: dict[tuple[str, str], int]
    ) -> None:
        super().__init__(tokens, types)
        self.ranks = ranks
        self._bytes = [self._spell(i) for i in range(len(tokens))]

    @classmethod
    def from_gguf(cls, metadata: Mapping[str, object], path: Path) -> ByteBpeTokenizer:
        """Build from `tokenizer.ggml.*` metadata of a `gpt2` tokenizer."""
        meta = GgufMetadata(metadata, path)
        _check_pre(meta)
        tokens = meta.strings("tokenizer.ggml.tokens")
        types = [
            int(t) for t in meta.numbers("tokenizer.ggml.token_type", len(tokens), 1)
        ]
        tokenizer = cls(tokens, types, _ranks(meta))
        missing = [c for c in BYTE_TO_CHAR if c not in tokenizer.ids]
        if missing:
            raise meta.error(
                "tokenizer.ggml.tokens",
                f"lacks the byte token {missing[0]!r} (byte "
                f"0x{CHAR_TO_BYTE[missing[0]]:02X}) that byte-level BPE needs",
            )
        tokenizer.read_special_ids(meta, add_bos=False, unk=None)
        return tokenizer

    def _spell(self, token_id: int) -> bytes:
        """The bytes a token decodes to, worked out once at construction."""
        kind = self.types[token_id]
        if kind == TokenType.CONTROL:
            return b""
        if kind == TokenType.USER_DEFINED:
            return self.tokens[token_id].encode()
        return bytes_of(self.tokens[token_id])

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes this token contributes to decoded text (none for control)."""
        return self._bytes[token_id]

    def _words(self, text: str, start: int, after_special: bool) -> Iterator[Word]:
        """GPT-2's words, each as its bytes spelt in the byte alphabet."""
        for match in GPT2_SPLIT.finditer(text):
            pieces: list[str] = []
            spans: list[tuple[int, int]] = []
            for index, char in enumerate(match.group(), start + match.start()):
                encoded = char.encode()
                pieces.extend(BYTE_TO_CHAR[b] for b in encoded)
                spans.extend([(index, index + 1)] * len(encoded))
            yield pieces, spans

    def _priority(self, left: str, right: str) -> float | None:
        """Pairs learned earlier merge first."""
        return self.ranks.get((left, right))


def _check_pre(meta: GgufMetadata) -> None:
    """Refuse word splits other than GPT-2's, which this tokenizer implements."""
    pre = meta.metadata.get("tokenizer.ggml.pre")
    if pre not in GPT2_PRE:
        raise UnsupportedModelError(
            f"{meta.path}: tokenizer.ggml.pre is {pre!r}; stepper splits words only "
            "the GPT-2 way ('gpt-2' or 'default'): load the model's Hugging Face "
            "directory instead, whose tokenizer.json carries its own split"
        )


def _ranks(meta: GgufMetadata) -> dict[tuple[str, str], int]:
    """Each merge pair's rank: its line number in `tokenizer.ggml.merges`."""
    ranks: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(meta.strings("tokenizer.ggml.merges")):
        left, space, right = line.partition(" ")
        if not (left and space and right) or " " in right:
            raise meta.error("tokenizer.ggml.merges", f"entry {rank} is {line!r}")
        ranks.setdefault((left, right), rank)
    return ranks
