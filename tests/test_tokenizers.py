"""Tokenizer tests: published vectors, agreement with `tokenizers`, round trips."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import gguf
import pytest
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as LibraryTokenizer

from stepper.errors import ModelFileError, UnsupportedModelError
from stepper.tokenizer import (
    Encoding,
    Tokenizer,
    replay,
    tokenizer_from_gguf,
    tokenizer_from_hf,
)

DATA = Path(__file__).parent / "data"
GPT2_GGUF = DATA / "gpt2" / "ggml-vocab-gpt-2.gguf"
PHI3_GGUF = DATA / "phi3" / "ggml-vocab-phi-3.gguf"
STORIES_GGUF = Path(__file__).parent.parent / "stepper" / "models" / "stories260K.gguf"
BABY_GGUF = DATA / "babyllama" / "babyllama-tok105.gguf"
SEPARATOR = "\n__ggml_vocab_test__\n"
BYTE_FALLBACK = {"gpt2": GPT2_GGUF, "phi3": PHI3_GGUF, "stories260K": STORIES_GGUF}
TRICKY = [
    "",
    "Once upon a time",
    " leading space",
    "trailing space ",
    "whitespace   runs\t\t and\n\n\nnewlines\r\n",
    "emoji 🦙🚀 and a family 👨‍👩‍👧 with 😶‍🌫️",
    "CJK 世界你好，こんにちは",
    "right to left: שלום עולם مرحبا",
    "combining e\u0301 and ñ",
    "\u200b zero width and \x00 nul",
    "x" * 600 + " " + "ab" * 300,
]


@cache
def gguf_metadata(path: Path) -> dict[str, Any]:
    """A GGUF file's metadata as plain Python values, as the loader hands it over.

    Cached, since reading GPT-2's 100,000 strings takes seconds: never mutate it.
    """
    reader = gguf.GGUFReader(path)
    fields = reader.fields.items()
    return {
        key: field.contents() for key, field in fields if not key.startswith("GGUF.")
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
    outputs = [[int(i) for i in line.split()] for line in lines.split("\n")]
    return list(zip(inputs[:-1], outputs, strict=False))


def save_library(library: LibraryTokenizer, directory: Path, **files: dict) -> Path:
    """Write tokenizer.json and the named JSON files (`tokenizer_config`...)."""
    directory.mkdir()
    library.save(str(directory / "tokenizer.json"))
    for name, content in files.items():
        (directory / f"{name}.json").write_text(json.dumps(content))
    return directory


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """GPT-2's tokenizer.json, built by `tokenizers` from encoder.json + vocab.bpe."""
    gpt2 = DATA / "gpt2"
    bpe = models.BPE.from_file(str(gpt2 / "encoder.json"), str(gpt2 / "vocab.bpe"))
    library = LibraryTokenizer(bpe)
    library.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    library.decoder = decoders.ByteLevel()
    library.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    path = tmp_path_factory.mktemp("hf") / "gpt2"
    return tokenizer_from_hf(
        save_library(
            library,
            path,
            tokenizer_config={"bos_token": "<|endoftext|>"},
            generation_config={"eos_token_id": [50256]},
        )
    )


def sentencepiece_merges(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Every split of a normal piece into two pieces, best merged score first.

    This is how a SentencePiece vocabulary becomes a tokenizer.json merge list.
    """
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    scores = meta["tokenizer.ggml.scores"]
    vocab = {token: i for i, token in enumerate(tokens)}
    ranked = []
    for token, i in vocab.items():
        for cut in range(1, len(token) if types[i] == 1 else 0):
            left, right = token[:cut], token[cut:]
            if left in vocab and right in vocab:
                ranked.append((-scores[i], i, cut, (left, right)))
    return [pair for *_, pair in sorted(ranked)]


@pytest.fixture(scope="module")
def hf_phi3(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """A Llama-style tokenizer.json (`▁`, byte fallback) from phi-3's vocabulary."""
    meta = gguf_metadata(PHI3_GGUF)
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    vocab = {token: i for i, token in enumerate(tokens)}
    merges = sentencepiece_merges(meta)
    library = LibraryTokenizer(
        models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True)
    )
    library.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    library.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    control = [t for t, kind in zip(tokens, types, strict=True) if kind == 3]
    library.add_special_tokens([AddedToken(t, special=True) for t in control])
    config = {"add_bos_token": True, "bos_token": "<s>", "eos_token": "<|endoftext|>"}
    path = tmp_path_factory.mktemp("hf") / "phi3"
    return tokenizer_from_hf(save_library(library, path, tokenizer_config=config))


def final_pieces(encoding: Encoding) -> list[str]:
    """The pieces that replaying an encoding's merge trace ends with."""
    return [piece for word in replay(encoding.words, encoding.merges) for piece in word]


def check_offsets(tokenizer: Tokenizer, text: str, encoding: Encoding) -> None:
    """Spans run left to right, cover the text, and hold each token's bytes."""
    previous = covered = 0
    for token_id, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
        assert previous <= start <= covered <= len(text), (token_id, start, covered)
        data = tokenizer.token_bytes(token_id)
        if start == 0 and tokenizer.strip_leading_space:
            data = data.removeprefix(b" ")  # the dummy prefix space is not in the text
        assert data in text[start:end].encode(), (token_id, data, text[start:end])
        previous, covered = start, max(covered, end)
    assert covered == len(text)


@pytest.mark.parametrize("path", [GPT2_GGUF, PHI3_GGUF], ids=["gpt2", "phi3"])
def test_llama_cpp_vectors(path: Path) -> None:
    """Every one of llama.cpp's 46 strings encodes to exactly its published ids."""
    tokenizer = gguf_tokenizer(path)
    cases = vectors(path)
    assert len(cases) == 46
    got = [(text, tokenizer.encode(text, bos=False).ids, ids) for text, ids in cases]
    wrong = [case for case in got if case[1] != case[2]]
    assert not wrong, f"{len(wrong)} of 46 differ, first: {wrong[0]}"


@pytest.mark.parametrize(
    ("name", "path"),
    [("stories260K", STORIES_GGUF), ("babyllama-tok105", BABY_GGUF)],
)
def test_sentencepiece_vectors(name: str, path: Path) -> None:
    """Ids agree with the `sentencepiece` library's (tools/make_spm_fixture.py)."""
    cases = json.loads((DATA / "spm_vectors.json").read_text(encoding="utf-8"))[name]
    tokenizer = gguf_tokenizer(path)
    wrong = {t: tokenizer.encode(t, bos=False).ids for t in cases}
    wrong = {t: ids for t, ids in wrong.items() if ids != cases[t]}
    assert not wrong


@pytest.mark.parametrize("name", BYTE_FALLBACK)
@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_round_trip_and_offsets(name: str, text: str) -> None:
    """Tricky text decodes back to itself, and offsets slice it token by token."""
    tokenizer = gguf_tokenizer(BYTE_FALLBACK[name])
    encoding = tokenizer.encode(text, bos=True)
    assert tokenizer.decode(encoding.ids) == text
    assert encoding.ids[:1] == [tokenizer.bos_id] and encoding.offsets[0] == (0, 0)
    check_offsets(tokenizer, text, Encoding(encoding.ids[1:], encoding.offsets[1:]))


@pytest.mark.parametrize("name", BYTE_FALLBACK)
@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_merge_trace_replays_to_the_tokens(name: str, text: str) -> None:
    """Applying the recorded merges to the first pieces gives exactly the tokens."""
    tokenizer = gguf_tokenizer(BYTE_FALLBACK[name])
    encoding = tokenizer.encode(text, bos=False)
    assert final_pieces(encoding) == [tokenizer.piece(i) for i in encoding.ids]
    first = [piece for word in encoding.words for piece in word]
    assert all(len(piece) == 1 or piece.startswith("<0x") for piece in first)


def test_stories_once_upon_a_time() -> None:
    """The built-in model's vocabulary: BOS added, `▁` words, dummy space unseen."""
    tokenizer = gguf_tokenizer(STORIES_GGUF)
    encoding = tokenizer.encode("Once upon a time")
    assert encoding.ids == [1, 403, 407, 261, 378]
    assert encoding.offsets == [(0, 0), (0, 4), (4, 9), (9, 11), (11, 16)]
    shown = ["<s>", "␣Once", "␣upon", "␣a", "␣time"]
    assert [tokenizer.display(i) for i in encoding.ids] == shown
    assert encoding.words == [list("▁Once▁upon▁a▁time")]
    assert encoding.merges[0].left + encoding.merges[0].right == "▁t"
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.add_bos) == (1, 2, True)
    assert tokenizer.encode("Once", bos=False).ids == [403]


def test_no_byte_fallback_gives_one_unknown_per_run() -> None:
    """Without `<0x..>` pieces, a run of unknown characters becomes one `<unk>`."""
    tokenizer = gguf_tokenizer(BABY_GGUF)
    encoding = tokenizer.encode("a 世界 b", bos=False)
    assert encoding.ids == [3, 5, 3, 0, 3, 23]
    assert tokenizer.piece(0) == "<unk>" and tokenizer.unk_id == 0
    assert encoding.offsets == [(0, 0), (0, 1), (1, 2), (2, 4), (4, 5), (5, 6)]
    assert tokenizer.decode(encoding.ids) == "a  ⁇  b"  # as SentencePiece decodes it
    once = "Once upon a time"
    assert tokenizer.decode(tokenizer.encode(once).ids) == once


def test_gguf_gpt2_agrees_with_tokenizers_library(hf_gpt2: Tokenizer) -> None:
    """Our GGUF byte-level BPE and `tokenizers` give the same ids and offsets."""
    ours = gguf_tokenizer(GPT2_GGUF)
    for text in [text for text, _ in vectors(GPT2_GGUF)] + TRICKY:
        mine, theirs = ours.encode(text), hf_gpt2.encode(text)
        assert (mine.ids, mine.offsets) == (theirs.ids, theirs.offsets), text
        assert (mine.words, mine.merges) == (theirs.words, theirs.merges), text
        assert hf_gpt2.decode(theirs.ids) == text


def test_hf_gpt2_spelling_and_specials(hf_gpt2: Tokenizer) -> None:
    """Byte-level pieces decode to bytes; config names BOS; BOS not added."""
    assert hf_gpt2.vocab_size == 50257
    assert (hf_gpt2.bos_id, hf_gpt2.eos_id, hf_gpt2.add_bos) == (50256, 50256, False)
    assert hf_gpt2.piece(262) == "Ġthe" and hf_gpt2.token_bytes(262) == b" the"
    assert hf_gpt2.display(198) == "⏎" and hf_gpt2.display(12520) == "␣<F0><9F>"
    assert hf_gpt2.is_special(50256) and hf_gpt2.display(50256) == "<|endoftext|>"
    assert hf_gpt2.encode("a<|endoftext|>b", special=True).ids == [64, 50256, 65]
    assert 50256 not in hf_gpt2.encode("a<|endoftext|>b").ids
    assert not hf_gpt2.strip_leading_space


def test_hf_sentencepiece_style(hf_phi3: Tokenizer) -> None:
    """A `▁`/`<0x0A>` tokenizer.json: vectors, BOS from config, decoding, trace."""
    for text, ids in vectors(PHI3_GGUF):
        encoding = hf_phi3.encode(text, bos=False)
        assert encoding.ids == ids, text
        assert hf_phi3.decode(encoding.ids) == text
        assert final_pieces(encoding) == [hf_phi3.piece(i) for i in ids], text
    assert (hf_phi3.bos_id, hf_phi3.eos_id, hf_phi3.add_bos) == (1, 32000, True)
    assert hf_phi3.encode("Hello").ids == [1, 15043]
    assert hf_phi3.strip_leading_space and hf_phi3.decode([1, 29871, 15043]) == " Hello"
    assert hf_phi3.token_bytes(13) == b"\n" and hf_phi3.display(243) == "<F0>"


def test_space_prefix_can_be_turned_off() -> None:
    """With `add_space_prefix` false, no `▁` goes before the text or comes off it."""
    metadata = {**gguf_metadata(PHI3_GGUF), "tokenizer.ggml.add_space_prefix": False}
    tokenizer = tokenizer_from_gguf(metadata, PHI3_GGUF)
    assert tokenizer.encode("Hello world", bos=False).ids == [10994, 3186]
    assert tokenizer.decode(tokenizer.encode(" Hello").ids) == " Hello"


@pytest.mark.parametrize("name", ["gpt2", "stories260K"])
def test_stream_never_splits_a_character(name: str) -> None:
    """Fed one id at a time, the stream holds bytes back instead of printing U+FFFD."""
    tokenizer = gguf_tokenizer(BYTE_FALLBACK[name])
    text = "🦙 世界 👨‍👩‍👧 é"
    stream = tokenizer.stream()
    parts = [stream.feed(i) for i in tokenizer.encode(text).ids]
    assert "\ufffd" not in "".join(parts)
    assert "" in parts  # some tokens carried only part of a character
    assert "".join(parts) + stream.flush() == text


def test_stream_flush_and_continuation() -> None:
    """Leftover bytes become U+FFFD only at flush; a mid-text stream keeps spaces."""
    tokenizer = gguf_tokenizer(STORIES_GGUF)
    stream = tokenizer.stream()
    assert stream.feed(tokenizer.find("<0xF0>") or 0) == ""
    assert stream.flush() == "\ufffd"
    later = tokenizer.stream(at_start=False)
    assert later.feed(tokenizer.find("▁a") or 0) == " a"
    assert tokenizer.decode([1, tokenizer.find("▁a") or 0]) == "a"


def test_display_and_find() -> None:
    """Pieces show readably, and a typed piece, screen text or plain text finds them."""
    stories, gpt2 = gguf_tokenizer(STORIES_GGUF), gguf_tokenizer(GPT2_GGUF)
    assert [stories.display(i) for i in (1, 13, 12, 35, 231, 378)] == [
        "<s>",
        "⏎",
        "⇥",
        "␣",
        "<E4>",
        "␣time",
    ]
    for typed in ("▁time", "␣time", " time"):
        assert stories.find(typed) == 378
    assert stories.find("<0x0A>") == stories.find("⏎") == 13
    assert gpt2.find("Ġthe") == gpt2.find(" the") == gpt2.find("␣the") == 262
    assert gpt2.find("no such token anywhere") is None
    assert gpt2.is_special(50256) and not gpt2.is_special(262)


def test_special_tokens_parse_only_when_asked() -> None:
    """Control-token text is plain text unless `special=True`."""
    gpt2, stories = gguf_tokenizer(GPT2_GGUF), gguf_tokenizer(STORIES_GGUF)
    assert gpt2.encode("a<|endoftext|>b", special=True).ids == [64, 50256, 65]
    assert 50256 not in gpt2.encode("a<|endoftext|>b").ids
    parsed = stories.encode("hi</s>", special=True)
    assert parsed.ids[-1] == 2 and parsed.offsets[-1] == (2, 6)
    assert gpt2.encode("").ids == [] and gpt2.decode([]) == ""
    assert not gpt2.add_bos and gpt2.encode("a").ids == [64]


def test_long_word_is_not_quadratic() -> None:
    """A 20,000-character SentencePiece word (no dummy splits) encodes quickly."""
    tokenizer = gguf_tokenizer(PHI3_GGUF)
    text = "abcdefghij" * 2000
    start = time.perf_counter()
    encoding = tokenizer.encode(text)
    elapsed = time.perf_counter() - start
    assert tokenizer.decode(encoding.ids) == text
    assert elapsed < 3.0, f"{elapsed:.2f} s for {len(text)} characters"


def small_metadata(**changes: object) -> dict[str, object]:
    """A three-token `llama` vocabulary's metadata, with `changes` applied."""
    metadata: dict[str, object] = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": ["<unk>", "<s>", "▁"],
        "tokenizer.ggml.scores": [0.0, 0.0, -1.0],
        "tokenizer.ggml.token_type": [2, 3, 1],
    }
    metadata.update({key.replace("__", "."): value for key, value in changes.items()})
    return metadata


@pytest.mark.parametrize(
    ("changes", "error", "place"),
    [
        ({"tokenizer__ggml__model": "bert"}, UnsupportedModelError, "model"),
        ({"tokenizer__ggml__model": None}, ModelFileError, "model"),
        ({"tokenizer__ggml__tokens": None}, ModelFileError, "tokens"),
        ({"tokenizer__ggml__tokens": [1, 2, 3]}, ModelFileError, "tokens"),
        ({"tokenizer__ggml__scores": [0.0]}, ModelFileError, "scores"),
        ({"tokenizer__ggml__bos_token_id": 7}, ModelFileError, "bos_token_id"),
        ({"tokenizer__ggml__add_bos_token": "yes"}, ModelFileError, "add_bos_token"),
    ],
)
def test_bad_gguf_metadata_is_one_line(changes: dict, error: type, place: str) -> None:
    """Bad metadata names the file and the key, in one line, with no traceback."""
    with pytest.raises(error) as caught:
        tokenizer_from_gguf(small_metadata(**changes), Path("model.gguf"))
    message = str(caught.value)
    assert "model.gguf" in message and f"tokenizer.ggml.{place}" in message
    assert "\n" not in message


def test_gpt2_pre_tokenizer_and_merges_are_checked() -> None:
    """Only GPT-2's own word split is accepted; merge lines must be `a b`."""
    metadata = gguf_metadata(GPT2_GGUF)
    with pytest.raises(UnsupportedModelError, match=r"tokenizer\.ggml\.pre.*llama-bpe"):
        tokenizer_from_gguf({**metadata, "tokenizer.ggml.pre": "llama-bpe"}, GPT2_GGUF)
    assert tokenizer_from_gguf({**metadata, "tokenizer.ggml.pre": "default"}, GPT2_GGUF)
    merges = ["Ġt", *metadata["tokenizer.ggml.merges"][1:]]
    with pytest.raises(ModelFileError, match=r"tokenizer\.ggml\.merges entry 0"):
        tokenizer_from_gguf({**metadata, "tokenizer.ggml.merges": merges}, GPT2_GGUF)


def test_bad_hf_directory_is_one_line(tmp_path: Path) -> None:
    """A missing or unreadable tokenizer.json is a one-line ModelFileError."""
    with pytest.raises(ModelFileError, match="no tokenizer.json"):
        tokenizer_from_hf(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "BPE"')
    with pytest.raises(ModelFileError, match="tokenizer.json: not valid JSON"):
        tokenizer_from_hf(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "Nonsense"}}')
    with pytest.raises(
        ModelFileError, match="tokenizers library cannot read it"
    ) as caught:
        tokenizer_from_hf(tmp_path)
    assert "\n" not in str(caught.value)


def test_invisible_characters_are_displayed_by_code():
    from stepper.load import load_model

    tok = load_model("stories260k").tokenizer
    hair = tok.find("\u200a")
    assert hair is not None and tok.display(hair) == "<U+200A>"
