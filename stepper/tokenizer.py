"""What every tokenizer in stepper offers: encoding with a merge trace, and decoding.

Concrete tokenizers live beside this module; `Tokenizer` is the contract the model,
the session and the app rely on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


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


class Tokenizer(ABC):
    """Turns text into token ids and back."""

    bos_id: int | None = None
    eos_id: int | None = None
    add_bos: bool = False

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """V, the number of token ids."""

    @abstractmethod
    def encode(self, text: str) -> Encoding:
        """Encode `text`, adding BOS first when the model asks for it."""

    @abstractmethod
    def piece(self, token_id: int) -> str:
        """The token as the vocabulary spells it (`Ġthe`, `▁the`, `<0xE6>`)."""

    @abstractmethod
    def token_bytes(self, token_id: int) -> bytes:
        """The bytes this token contributes to decoded text."""

    @abstractmethod
    def decode(self, ids: list[int]) -> str:
        """The text of a whole sequence of ids."""
