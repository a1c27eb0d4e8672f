"""The `llama` GGUF tokenizer: SentencePiece-style BPE driven by token scores.

Spaces are spelt `▁`, a space is put before the text (`add_space_prefix`), and the
text is split into characters that merge pairwise, always the pair whose merged
piece has the highest score, leftmost first. A character the vocabulary lacks
becomes its UTF-8 bytes as `<0xE6>` tokens (byte fallback); when the vocabulary has
no byte tokens, each run of such characters becomes one unknown token, as in
SentencePiece. Unlike SentencePiece, the text is not normalized (no NFKC, no
collapsing of whitespace runs), which is what llama.cpp does too. Unknown
characters are turned into bytes before merging rather than after, so a piece that
contains a character which is not itself a piece never forms; SentencePiece
training never makes such pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from stepper.gguf_vocab import GgufMetadata, GgufTokenizer, TokenType, Word

SPACE = "▁"  # U+2581, how SentencePiece spells a space
UNKNOWN_TEXT = " ⁇ "  # what SentencePiece decodes the unknown token to
# A byte token's spelling; a byte-typed token spelled otherwise (a damaged
# vocabulary) decodes as its literal text instead of failing.
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


class SpmTokenizer(GgufTokenizer):
    """SentencePiece-style BPE over a GGUF vocabulary with scores."""

    kind = "llama (SentencePiece BPE)"

    def __init__(
        self,
        tokens: list[str],
        types: list[int],
        scores: list[float],
        space_prefix: bool,
    ) -> None:
        super().__init__(tokens, types)
        self.scores = scores
        self.add_space_prefix = space_prefix
        self.strip_leading_space = space_prefix
        self._bytes = [self._spell(i) for i in range(len(tokens))]
        self._byte_ids = [self.ids.get(f"<0x{b:02X}>") for b in range(256)]

    @classmethod
    def from_gguf(cls, metadata: Mapping[str, object], path: Path) -> SpmTokenizer:
        """Build from `tokenizer.ggml.*` metadata of a `llama` tokenizer."""
        meta = GgufMetadata(metadata, path)
        tokens = meta.strings("tokenizer.ggml.tokens")
        n = len(tokens)
        scores = [float(s) for s in meta.numbers("tokenizer.ggml.scores", n, 0.0)]
        types = [int(t) for t in meta.numbers("tokenizer.ggml.token_type", n, 1)]
        prefix = meta.flag("tokenizer.ggml.add_space_prefix", True)
        tokenizer = cls(tokens, types, scores, prefix)
        # llama.cpp falls back to id 0 as the unknown token for this kind.
        tokenizer.read_special_ids(meta, add_bos=True, unk=0)
        return tokenizer

    def _spell(self, token_id: int) -> bytes:
        """The bytes a token decodes to, worked out once at construction."""
        piece, kind = self.tokens[token_id], self.types[token_id]
        if kind == TokenType.BYTE and _BYTE_PIECE.fullmatch(piece):
            return bytes([int(piece[3:5], 16)])
        if kind == TokenType.CONTROL:
            return b""
        if kind == TokenType.UNKNOWN:
            return UNKNOWN_TEXT.encode()
        return piece.replace(SPACE, " ").encode()

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes this token contributes to decoded text (none for `<s>`)."""
        return self._bytes[token_id]

    def _words(self, text: str, start: int, after_special: bool) -> Iterator[Word]:
        """The whole fragment is one word of characters, bytes for unknown ones."""
        pieces, spans = [], []
        if self.add_space_prefix and after_special:
            pieces.append(SPACE)
            spans.append((start, start))
        unknown = False
        for index, char in enumerate(text, start):
            first = self._first_pieces(SPACE if char == " " else char)
            if first is None and unknown:
                # SentencePiece gives a run of unknown characters one unknown token.
                spans[-1] = (spans[-1][0], index + 1)
                continue
            unknown = first is None
            first = first or [self.tokens[self.unk_id or 0]]
            pieces.extend(first)
            spans.extend([(index, index + 1)] * len(first))
        if pieces:
            yield pieces, spans

    def _first_pieces(self, char: str) -> list[str] | None:
        """The character as a piece, or as byte pieces; None when it is unknown."""
        if char in self.ids:
            return [char]
        byte_ids = [self._byte_ids[b] for b in char.encode()]
        if all(i is not None for i in byte_ids):
            return [self.tokens[i] for i in byte_ids if i is not None]
        return None

    def _priority(self, left: str, right: str) -> float | None:
        """Merged pieces with a higher score merge first."""
        token_id = self.ids.get(left + right)
        return None if token_id is None else -self.scores[token_id]
