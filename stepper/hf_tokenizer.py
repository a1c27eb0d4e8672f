"""A `Tokenizer` over a Hugging Face `tokenizer.json`, read with `tokenizers`.

The library gives the ids and offsets. Pieces decode either as byte-level BPE
(`Ġthe`, GPT-2 and Qwen) or SentencePiece-style (`▁the`, `<0x0A>`, Llama and
Mistral), whichever the file's decoder or BPE model says.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import tokenizers

from stepper.bpe import TraceBuilder, merge_word
from stepper.bytebpe import bytes_of
from stepper.errors import ModelFileError
from stepper.spm import SPACE
from stepper.tokenizer import Encoding, Tokenizer

_SAVE_FIX = "save it again with transformers' AutoTokenizer.save_pretrained"


class HfTokenizer(Tokenizer):
    """Ids and offsets from `tokenizers`; the merge trace from stepper's own BPE.

    The trace is replayed only for a BPE `tokenizer.json` and kept only when the
    replay ends in exactly the library's ids. It cannot be replayed for WordPiece
    or Unigram models, BPE with dropout or subword prefixes, or text holding added
    tokens: then `words` and `merges` are empty and only the final tokens show.
    WordPiece's `##` continuation marks are not interpreted, so such a vocabulary
    decodes with them left in.
    """

    def __init__(
        self,
        library: tokenizers.Tokenizer,
        spec: dict[str, Any],
        config: dict[str, Any],
    ) -> None:
        self.spec = spec
        self._model = spec.get("model") or {}
        self._plain = library
        self._plain.encode_special_tokens = True
        self.kind = f"tokenizer.json ({self._model.get('type', 'unknown')})"
        self._pieces = self._read_pieces()
        steps = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
        self.byte_level = '"ByteLevel"' in steps
        self._bytes = [self._spell(i, piece) for i, piece in enumerate(self._pieces)]
        self._vocab = library.get_vocab(with_added_tokens=True)
        self._ranks = _ranks(self._model) if _replayable(self._model) else None
        self._read_special_ids(config)
        first = library.encode("a", add_special_tokens=False).ids
        self.strip_leading_space = bool(first) and self._bytes[first[0]][:1] == b" "

    @cached_property
    def _parsing(self) -> tokenizers.Tokenizer:
        """A second copy that parses special-token text, so no flag flips per call."""
        library = tokenizers.Tokenizer.from_str(self._plain.to_str())
        library.encode_special_tokens = False
        return library

    @classmethod
    def from_directory(cls, directory: Path) -> HfTokenizer:
        """Read `tokenizer.json` and, when present, `tokenizer_config.json`."""
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ModelFileError(
                f"{directory}: no tokenizer.json; add the model's fast tokenizer "
                f"file ({_SAVE_FIX})"
            )
        config = _read_json(directory / "tokenizer_config.json")
        spec = _read_json(path)
        try:
            library = tokenizers.Tokenizer.from_file(str(path))
        except Exception as error:  # the library raises plain Exception
            reason = " ".join(str(error).split())  # keep the message on one line
            raise ModelFileError(
                f"{path}: the tokenizers library cannot read it ({reason}); {_SAVE_FIX}"
            ) from None
        if config.get("eos_token") is None:
            config["eos_token_id"] = _generation_eos(directory)
        return cls(library, spec, config)

    def _read_pieces(self) -> list[str]:
        """Every id's spelling; ids the file leaves out get an empty spelling."""
        size = self._plain.get_vocab_size(with_added_tokens=True)
        added = self._plain.get_added_tokens_decoder()
        self._special = {i for i, token in added.items() if token.special}
        self._added = set(added)
        size = max([size, *(i + 1 for i in added)])
        return [self._plain.id_to_token(i) or "" for i in range(size)]

    def _spell(self, token_id: int, piece: str) -> bytes:
        """The bytes a token decodes to, worked out once at construction."""
        if token_id in self._special:
            return b""
        if token_id in self._added:
            return piece.encode()
        if self.byte_level:
            return bytes_of(piece)
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            return bytes([int(piece[3:5], 16)])
        return piece.replace(SPACE, " ").encode()

    def _read_special_ids(self, config: dict[str, Any]) -> None:
        """BOS, EOS and UNK from tokenizer_config.json, else from the post-processor."""
        self.bos_id = self._id_of(config.get("bos_token"))
        self.eos_id = self._id_of(config.get("eos_token"))
        if self.eos_id is None and isinstance(config.get("eos_token_id"), int):
            self.eos_id = config["eos_token_id"]
        self.unk_id = self._id_of(config.get("unk_token"))
        plain = self._plain.encode("a", add_special_tokens=False).ids
        full = self._plain.encode("a", add_special_tokens=True).ids
        leads = len(full) > len(plain) and full[: len(plain)] != plain
        if leads and self.bos_id is None:
            self.bos_id = full[0]
        self.add_bos = bool(config.get("add_bos_token", leads))

    def _id_of(self, token: object) -> int | None:
        """The id of a token given as text or as `{"content": text}`."""
        if isinstance(token, dict):
            token = token.get("content")
        return self._plain.token_to_id(token) if isinstance(token, str) else None

    @property
    def vocab_size(self) -> int:
        """V, the number of token ids."""
        return len(self._pieces)

    def piece(self, token_id: int) -> str:
        """The token as the vocabulary spells it."""
        return self._pieces[token_id]

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes this token contributes to decoded text (none if special)."""
        return self._bytes[token_id]

    def is_special(self, token_id: int) -> bool:
        """Whether the file marks the token as a special added token."""
        return token_id in self._special

    def _encode_text(self, text: str, special: bool) -> Encoding:
        """The library's ids and offsets, with our replayed trace when it agrees."""
        library = self._parsing if special else self._plain
        result = library.encode(text, add_special_tokens=False)
        trace = self._replay(text)
        if trace is None or trace.ids != result.ids:
            return Encoding(result.ids, result.offsets)
        return Encoding(result.ids, result.offsets, trace.words, trace.merges)

    def _replay(self, text: str) -> Encoding | None:
        """Our BPE over the library's own normalized, pre-tokenized words."""
        if self._ranks is None:
            return None
        out = TraceBuilder()
        for word, _ in self._split(text):
            pieces = self._first_pieces(word)
            if pieces is None:
                return None
            merged = merge_word(pieces, [(0, 0)] * len(pieces), self._priority)
            out.add_word(merged, pieces, lambda piece: self._vocab.get(piece, -1))
        return out.encoding()

    def _priority(self, left: str, right: str) -> float | None:
        """Pairs listed earlier in the file's merges merge first."""
        return self._ranks.get((left, right)) if self._ranks else None

    def _split(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        """The words the library's normalizer and pre-tokenizer make of `text`."""
        normalizer, pre = self._plain.normalizer, self._plain.pre_tokenizer
        normalized = normalizer.normalize_str(text) if normalizer else text
        if pre is None:
            return [(normalized, (0, len(normalized)))] if normalized else []
        return pre.pre_tokenize_str(normalized)

    def _first_pieces(self, word: str) -> list[str] | None:
        """A word's first pieces as the library's BPE starts them; None if unsure."""
        if self._model.get("ignore_merges") and word in self._vocab:
            return [word]  # such a model takes a whole word in its vocabulary as is
        pieces: list[str] = []
        for char in word:
            spelt = [char]
            if char not in self._vocab:
                spelt = [f"<0x{b:02X}>" for b in char.encode()]
                if not self._model.get("byte_fallback"):
                    return None
            if not all(piece in self._vocab for piece in spelt):
                return None
            pieces.extend(spelt)
        return pieces


def _replayable(model: dict[str, Any]) -> bool:
    """Whether stepper's BPE can reproduce this model's merges."""
    return (
        model.get("type") == "BPE"
        and not model.get("dropout")
        and not model.get("continuing_subword_prefix")
        and not model.get("end_of_word_suffix")
    )


def _ranks(model: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Each merge pair's rank; merges are stored as `"a b"` or as `["a", "b"]`."""
    ranks: dict[tuple[str, str], int] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        ranks.setdefault((left, right), rank)
    return ranks


def _generation_eos(directory: Path) -> int | None:
    """The EOS id generation_config.json gives (the first, when it lists several)."""
    eos = _read_json(directory / "generation_config.json").get("eos_token_id")
    if isinstance(eos, list):
        eos = eos[0] if eos else None
    return eos if isinstance(eos, int) else None


def _read_json(path: Path) -> dict[str, Any]:
    """An optional JSON object file; absent means empty."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: not valid JSON ({error}); {_SAVE_FIX}") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path}: not a JSON object; {_SAVE_FIX}")
    return value
