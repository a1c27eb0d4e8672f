"""What every tokenizer in stepper offers: encoding with a merge trace, and decoding.

Concrete tokenizers live beside this module (`spm`, `bytebpe`, `hf_tokenizer`);
`Tokenizer` is the contract the model, the session and the app rely on, and holds
the behaviour they all share: BOS handling, readable display, lookup of a typed
token and streaming decode. `tokenizer_from_gguf` and `tokenizer_from_hf` build one.
"""

from __future__ import annotations

import codecs
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from stepper.errors import ModelFileError, UnsupportedModelError

# How display() shows characters that would otherwise be invisible on a screen.
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}
# Unicode categories that draw nothing: other spaces, format characters (zero-width
# joiners, direction marks), line and paragraph separators.
_INVISIBLE = ("Zs", "Cf", "Zl", "Zp")


@dataclass(frozen=True)
class Merge:
    """One BPE merge: two adjacent pieces of one word became one piece."""

    word: int  # index into Encoding.words
    position: int  # index of the left piece in that word, before the merge
    left: str
    right: str


@dataclass(frozen=True)
class Encoding:
    """Text turned into token ids, with what is needed to show how."""

    ids: list[int]
    offsets: list[tuple[int, int]]  # character span of each id in the text
    words: list[list[str]] = field(default_factory=list)  # first pieces per word
    merges: list[Merge] = field(default_factory=list)  # in the order applied


def replay(words: list[list[str]], merges: list[Merge]) -> list[list[str]]:
    """The pieces of every word after applying `merges` in order to `words`."""
    state = [list(word) for word in words]
    for merge in merges:
        pieces = state[merge.word]
        at = merge.position
        if pieces[at : at + 2] != [merge.left, merge.right]:
            raise ValueError(f"merge {merge} does not apply to {pieces[at : at + 2]}")
        pieces[at : at + 2] = [merge.left + merge.right]
    return state


def readable(data: bytes) -> str:
    """Bytes as screen text: `␣ ⏎ ⇥` for whitespace, `<E6>` for broken bytes."""
    out = []
    while data:
        try:
            text, data = data.decode("utf-8"), b""
        except UnicodeDecodeError as error:
            text = data[: error.start].decode("utf-8")
            bad, data = data[error.start : error.end], data[error.end :]
            text += "".join(f"<{byte:02X}>" for byte in bad)
        out.append(text)
    return "".join(_visible(char) for char in "".join(out))


def _visible(char: str) -> str:
    """One character made visible; control and invisible ones become their code."""
    if char in _VISIBLE:
        return _VISIBLE[char]
    category = unicodedata.category(char) if len(char) == 1 else ""
    if category == "Cc":
        return f"<{ord(char):02X}>"
    if category in _INVISIBLE:  # a hair space or a zero-width joiner shows nothing
        return f"<U+{ord(char):04X}>"
    return char


class Tokenizer(ABC):
    """Turns text into token ids and back."""

    kind: str = "tokenizer"  # a short name for `stepper inspect`
    bos_id: int | None = None
    eos_id: int | None = None
    unk_id: int | None = None
    add_bos: bool = False
    # SentencePiece adds a space before the text; decoding drops it again.
    strip_leading_space: bool = False

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """V, the number of token ids."""

    @abstractmethod
    def piece(self, token_id: int) -> str:
        """The token as the vocabulary spells it (`Ġthe`, `▁the`, `<0xE6>`)."""

    @abstractmethod
    def token_bytes(self, token_id: int) -> bytes:
        """The bytes this token contributes to decoded text."""

    @abstractmethod
    def is_special(self, token_id: int) -> bool:
        """Whether the token is a control or added token such as `<s>`."""

    @abstractmethod
    def _encode_text(self, text: str, special: bool) -> Encoding:
        """Encode `text` without BOS; `special` lets control-token text match."""

    def encode(
        self, text: str, bos: bool | None = None, *, special: bool = False
    ) -> Encoding:
        """Encode `text`, with BOS first when `bos` says so (None: as the model asks).

        With `special`, text spelling a control token (`<|endoftext|>`) becomes that
        token; without it such text is tokenized as ordinary characters.
        """
        encoding = self._encode_text(text, special)
        if not (self.add_bos if bos is None else bos) or self.bos_id is None:
            return encoding
        return Encoding(
            [self.bos_id, *encoding.ids],
            [(0, 0), *encoding.offsets],
            encoding.words,
            encoding.merges,
        )

    def decode(self, ids: list[int]) -> str:
        """The text of a whole sequence of ids."""
        stream = self.stream()
        return "".join(stream.feed(token_id) for token_id in ids) + stream.flush()

    def stream(self, at_start: bool = True) -> StreamDecoder:
        """A decoder fed one id at a time; `at_start` when the ids begin the text."""
        return StreamDecoder(self, at_start)

    def display(self, token_id: int) -> str:
        """The token made readable for a screen (`␣the`, `⏎`, `<E6>`, `<s>`)."""
        data = self.token_bytes(token_id)
        if self.is_special(token_id) or not data:
            return self.piece(token_id)
        return readable(data)

    def find(self, text: str) -> int | None:
        """The id spelt `text` in the vocabulary, on screen or as decoded text."""
        for table in (self._by_piece, self._by_display, self._by_text):
            if text in table:
                return table[text]
        return None

    @cached_property
    def _by_piece(self) -> dict[str, int]:
        """Vocabulary spelling to id, the lowest id winning a tie."""
        return _first_ids(self.piece(i) for i in range(self.vocab_size))

    @cached_property
    def _by_display(self) -> dict[str, int]:
        """Screen spelling to id."""
        return _first_ids(self.display(i) for i in range(self.vocab_size))

    @cached_property
    def _by_text(self) -> dict[str, int]:
        """Decoded text to id, for a user who types ` the` rather than `Ġthe`."""
        return _first_ids(_text(self.token_bytes(i)) for i in range(self.vocab_size))


def _text(data: bytes) -> str:
    """Bytes as text, or empty when they are not complete UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _first_ids(keys: Iterable[str]) -> dict[str, int]:
    """Map each key to the first index it appears at."""
    table: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key:
            table.setdefault(key, index)
    return table


class StreamDecoder:
    """Decodes ids one at a time, holding back bytes of an unfinished character."""

    def __init__(self, tokenizer: Tokenizer, at_start: bool = True) -> None:
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._strip = at_start and tokenizer.strip_leading_space

    def feed(self, token_id: int) -> str:
        """The text completed by this token, possibly empty; never a split character."""
        data = self.tokenizer.token_bytes(token_id)
        if self._strip and data:
            self._strip = False
            data = data.removeprefix(b" ")
        return self._utf8.decode(data)

    def flush(self) -> str:
        """What is left: bytes that never completed come out as U+FFFD."""
        return self._utf8.decode(b"", final=True)


def tokenizer_from_gguf(metadata: Mapping[str, object], path: Path) -> Tokenizer:
    """The tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata."""
    from stepper.bytebpe import ByteBpeTokenizer
    from stepper.spm import SpmTokenizer

    model = metadata.get("tokenizer.ggml.model")
    if model is None:
        raise ModelFileError(
            f"{path}: metadata has no tokenizer.ggml.model, so the file carries no "
            "tokenizer; convert the model again with its tokenizer included"
        )
    if model == "llama":
        return SpmTokenizer.from_gguf(metadata, path)
    if model == "gpt2":
        return ByteBpeTokenizer.from_gguf(metadata, path)
    raise UnsupportedModelError(
        f"{path}: tokenizer.ggml.model is {model!r}; stepper reads the 'llama' "
        "(SentencePiece) and 'gpt2' (byte-level BPE) tokenizers: use a model "
        "with one of those, or its Hugging Face directory with tokenizer.json"
    )


def tokenizer_from_hf(directory: Path) -> Tokenizer:
    """The tokenizer of a Hugging Face model directory (its `tokenizer.json`)."""
    from stepper.hf_tokenizer import HfTokenizer

    return HfTokenizer.from_directory(directory)
