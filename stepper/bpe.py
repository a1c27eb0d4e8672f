"""The BPE merge loop shared by every tokenizer, recording each merge it makes.

Pieces of one word sit in a linked list; candidate pairs wait in a heap ordered by
priority and then by position, so the leftmost of equally good pairs merges first.
Encoding a word of n pieces costs O(n log n), which keeps a few kilobytes of text
without spaces (one SentencePiece word) fast.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from stepper.tokenizer import Encoding, Merge

# Lower is better; None means the two pieces never merge.
Priority = Callable[[str, str], float | None]
Span = tuple[int, int]
IdOf = Callable[[str], int]


@dataclass(frozen=True)
class MergedWord:
    """One word after BPE: its final pieces, their spans and the merges made."""

    pieces: list[str]
    spans: list[Span]  # character span of each final piece in the text
    steps: list[tuple[int, str, str]]  # (position before the merge, left, right)


class _Alive:
    """A Fenwick tree counting the pieces still alive, to give list positions."""

    def __init__(self, n: int) -> None:
        self.tree = [0] * (n + 1)
        for i in range(n):
            self.add(i, 1)

    def add(self, i: int, delta: int) -> None:
        """Add `delta` at index `i`."""
        i += 1
        while i < len(self.tree):
            self.tree[i] += delta
            i += i & -i

    def before(self, i: int) -> int:
        """How many pieces are alive at indices below `i`."""
        total = 0
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total


class _Word:
    """The linked list of pieces being merged."""

    def __init__(self, pieces: list[str], spans: list[Span]) -> None:
        n = len(pieces)
        self.text = list(pieces)
        self.spans = list(spans)
        self.next = [*range(1, n), -1]
        self.prev = list(range(-1, n - 1))
        self.alive = _Alive(n)

    def merge(self, i: int) -> int:
        """Merge piece `i` with its right neighbour; return its position before."""
        j = self.next[i]
        self.text[i] += self.text[j]
        self.spans[i] = (self.spans[i][0], max(self.spans[i][1], self.spans[j][1]))
        self.text[j] = ""  # an empty text marks a dead node, so stale pairs fail
        self.next[i] = self.next[j]
        if self.next[j] >= 0:
            self.prev[self.next[j]] = i
        self.alive.add(j, -1)
        return self.alive.before(i)

    def final(self) -> tuple[list[str], list[Span]]:
        """The surviving pieces and their spans, left to right."""
        order = [i for i, text in enumerate(self.text) if text]
        return [self.text[i] for i in order], [self.spans[i] for i in order]


def _push(heap: list, word: _Word, i: int, priority: Priority) -> None:
    """Queue the pair that starts at node `i`, if it can merge."""
    j = word.next[i] if i >= 0 else -1
    if j < 0:
        return
    rank = priority(word.text[i], word.text[j])
    if rank is not None:
        heapq.heappush(heap, (rank, i, word.text[i], word.text[j]))


def merge_word(pieces: list[str], spans: list[Span], priority: Priority) -> MergedWord:
    """Apply BPE to one word, best pair first, recording every merge in order."""
    word = _Word(pieces, spans)
    heap: list[tuple[float, int, str, str]] = []
    for i in range(len(pieces) - 1):
        _push(heap, word, i, priority)
    steps = []
    while heap:
        _, i, left, right = heapq.heappop(heap)
        j = word.next[i]
        # Texts only grow, so an unchanged pair of texts means the pair is current.
        if word.text[i] != left or j < 0 or word.text[j] != right:
            continue
        steps.append((word.merge(i), left, right))
        _push(heap, word, word.prev[i], priority)
        _push(heap, word, i, priority)
    final_pieces, final_spans = word.final()
    return MergedWord(final_pieces, final_spans, steps)


class TraceBuilder:
    """Collects ids, offsets, words and merges while a text is encoded."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.offsets: list[Span] = []
        self.words: list[list[str]] = []
        self.merges: list[Merge] = []

    def add_token(self, token_id: int, piece: str, span: Span) -> None:
        """Add a token that takes no merges (a special token), as its own word."""
        self.words.append([piece])
        self.ids.append(token_id)
        self.offsets.append(span)

    def add_word(self, word: MergedWord, first: list[str], to_id: IdOf) -> None:
        """Add a merged word whose first pieces were `first`."""
        index = len(self.words)
        self.words.append(first)
        self.merges.extend(Merge(index, *step) for step in word.steps)
        self.ids.extend(to_id(piece) for piece in word.pieces)
        self.offsets.extend(word.spans)

    def encoding(self) -> Encoding:
        """The finished encoding."""
        return Encoding(self.ids, self.offsets, self.words, self.merges)
