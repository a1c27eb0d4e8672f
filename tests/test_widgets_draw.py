"""The drawing helpers, rendered to plain text without an app."""

from __future__ import annotations

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.segment import Segment

from stepper.load import load_model
from stepper.transformer import Transformer
from widgets.draw.bars import Bar, ProbabilityBars, bar_text
from widgets.draw.cdf import CdfStrip
from widgets.draw.cells import fit, window
from widgets.draw.chips import Chip, TokenChips
from widgets.draw.heatmap import Heatmap
from widgets.draw.merges import MergeReplay
from widgets.draw.palette import ANCHORS, SHADES, Scale, colour_at


def segment_lines(renderable: RenderableType, width: int) -> list[list[Segment]]:
    """The renderable's lines as segments, on a colourless console."""
    console = Console(width=width, color_system=None, legacy_windows=False)
    options = console.options.update(width=width)
    return console.render_lines(renderable, options, pad=False)


def text_lines(renderable: RenderableType, width: int = 80) -> list[str]:
    """The renderable's lines as plain text, trailing spaces removed."""
    return [
        "".join(s.text for s in line).rstrip()
        for line in segment_lines(renderable, width)
    ]


def causal(n: int, seed: int = 0) -> np.ndarray:
    """A random [n, n] attention matrix: rows sum to 1, NaN above the diagonal."""
    weights = np.tril(np.random.default_rng(seed).random((n, n)))
    weights /= weights.sum(axis=1, keepdims=True)
    weights[np.triu_indices(n, 1)] = np.nan
    return weights


@pytest.fixture(scope="module")
def story_capture():
    """A real Capture of the built-in model on a short prompt, with its tokens."""
    model = load_model("stories260k")
    ids = model.tokenizer.encode("Once upon a time, there was a cat").ids
    capture = Transformer(model).forward(ids)
    return capture, [model.tokenizer.display(i) for i in ids]


# -- palette -----------------------------------------------------------------------


def test_palette_ends_are_the_anchor_colours():
    """The first and last level are the colour map's own end colours."""
    for name, anchors in ANCHORS.items():
        assert colour_at(name, 0).triplet.hex == anchors[0]
        assert colour_at(name, 31).triplet.hex == anchors[-1]


def test_scale_symbols_grow_with_the_value():
    """A larger value never gets a weaker shade."""
    scale = Scale(0.0, 1.0)
    symbols = [scale.symbol(v) for v in np.linspace(0, 1, 41)]
    ranks = [SHADES.index(s) for s in symbols]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == len(SHADES) - 1


def test_signed_scale_writes_the_sign():
    """Signed values keep their sign in monochrome; near zero shows no sign."""
    scale = Scale(-1.0, 1.0, "purple-orange")
    assert scale.symbol(-0.9) == "-█" and scale.symbol(0.9) == "+█"
    assert scale.symbol(0.01) == " ·"


def test_scale_reuses_one_style_per_level():
    """Equal colour levels share one Style object, so rendering allocates nothing."""
    scale = Scale()
    assert scale.style(0.5) is scale.style(0.5001)
    assert scale.style(0.1) is not scale.style(0.9)


def test_scale_handles_non_finite_values_and_an_empty_span():
    """NaN and inf map to the lowest level; a zero span does not divide by zero."""
    assert Scale().fraction(float("nan")) == 0.0
    assert Scale(1.0, 1.0).fraction(3.0) == 0.0


@pytest.mark.parametrize("scale", [Scale(0.0, 0.7), Scale(-2.0, 2.0, "purple-orange")])
def test_codes_agree_with_symbol_and_style(scale):
    """The whole-matrix classification gives each value its own symbol and colour."""
    values = np.linspace(scale.low - 0.5, scale.high + 0.5, 57)
    for value, code in zip(values, scale.codes(values), strict=True):
        symbol, style = scale.piece(int(code))
        assert symbol == scale.symbol(float(value))
        assert style.color == scale.style(float(value)).color
    assert scale.codes(np.array([np.nan]))[0] == -1


def test_legend_names_a_range_for_every_shade():
    """Each shade symbol has a number range beside it."""
    legend = Scale(0.0, 0.5).legend()
    assert [s for s, _ in legend] == list(SHADES)
    assert legend[-1][1] == "0.4–0.5"


# -- heatmap -----------------------------------------------------------------------


def test_heatmap_draws_the_causal_triangle():
    """Masked cells above the diagonal are blank; every allowed cell has a symbol."""
    weights = causal(5)
    lines = text_lines(Heatmap(weights), 40)
    assert len(lines) == 5
    for row, line in enumerate(lines):
        cells = line[1:].ljust(10)
        assert all(cells[2 * c] in SHADES for c in range(row + 1))
        assert cells[2 * (row + 1) :].strip() == ""


def test_heatmap_rows_are_merged_runs_of_segments():
    """A row of equal values is a handful of segments, not one per cell."""
    heatmap = Heatmap(np.full((3, 200), 0.5))
    for line in segment_lines(heatmap, 500):
        assert len(line) <= 3


def test_heatmap_marks_the_current_row_and_labels_keys():
    """The current query row starts with ▶; column labels read downwards."""
    labels = ["<s>", "␣Once", "␣upon"]
    lines = text_lines(
        Heatmap(causal(3), row_labels=labels, col_labels=labels, current_row=2)
    )
    assert lines[0].split() == ["<", "␣", "␣"]
    assert lines[1].split() == ["s", "O", "u"]
    assert lines[5].startswith("▶␣upon")


def test_heatmap_values_on_demand():
    """With values shown, each allowed cell prints its percentage."""
    weights = np.array([[1.0, np.nan], [0.25, 0.75]])
    lines = text_lines(Heatmap(weights, show_values=True))
    assert lines[0].split() == ["100"]
    assert lines[1].split() == ["25", "75"]


def test_heatmap_of_a_real_capture(story_capture):
    """Layer 0 head 0 of a real forward pass draws one labelled row per token."""
    capture, tokens = story_capture
    weights = capture.attention[0][0].astype(float)  # [T, S]
    weights[np.triu_indices(len(tokens), 1)] = np.nan
    lines = text_lines(
        Heatmap(weights, row_labels=tokens, col_labels=tokens, current_row=3), 120
    )
    body = lines[3:]
    assert len(body) == len(tokens)
    assert body[0].startswith(" <s>") and body[3].startswith("▶␣a")
    assert all(cell_len(line) <= 1 + 9 + 2 * len(tokens) for line in body)


def test_signed_heatmap_of_real_embeddings(story_capture):
    """An embedding row folded to 16 columns shows signs and shades."""
    capture, _ = story_capture
    vector = capture.token_embeddings[1].reshape(-1, 16)  # [C/16, 16]
    top = float(np.abs(vector).max())
    lines = text_lines(Heatmap(vector, Scale(-top, top, "purple-orange")), 80)
    assert len(lines) == vector.shape[0]
    assert "+" in "".join(lines) and "-" in "".join(lines)


# -- bars --------------------------------------------------------------------------


def test_bar_text_uses_eighths():
    """Bars grow in eighths of a cell and always fill the width with spaces."""
    assert bar_text(1.0, 4) == "████"
    assert bar_text(0.5625, 4) == "██▎ "
    assert bar_text(0.0, 3) == "   "


def test_bars_draw_the_cut_between_kept_and_removed():
    """The rule naming the cut sits after the last kept row."""
    rows = [
        Bar("␣the", 262, 12.3, 0.6, chosen=True),
        Bar("␣a", 1, 11.0, 0.4),
        Bar("␣his", 55, 9.0, 0.1, kept=False),
    ]
    lines = text_lines(ProbabilityBars(rows, cutoff="top-k 2"), 70)
    assert lines[0].startswith("▶ ␣the") and lines[0].endswith("◀ sampled")
    assert "262" in lines[0] and "12.30" in lines[0] and "60.00%" in lines[0]
    assert "cut by top-k 2" in lines[2]
    assert lines[3].startswith("✗ ␣his")
    assert all(cell_len(line) <= 70 for line in lines)


def test_bars_without_a_cut_have_no_rule():
    """When every row is kept there is no cut line."""
    rows = [Bar("a", 1, 1.0, 0.5), Bar("b", 2, 1.0, 0.5)]
    assert len(text_lines(ProbabilityBars(rows))) == 2


# -- cumulative distribution -------------------------------------------------------


def test_cdf_marks_u_over_the_picked_slot():
    """The ▼ above the strip stands over a column of the chosen slot."""
    strip = CdfStrip([0.5, 0.8, 1.0], ["␣the", "␣a", "␣his"], chosen=1, u=0.6)
    lines = text_lines(strip, 40)
    column = lines[0].index("▼")
    assert lines[1][column] == "▓"
    assert "u = 0.6000" in lines[0]
    assert lines[-1].startswith("▲ slot 2 of 3: ␣a  [0.5000, 0.8000)")


def test_cdf_spans_cover_the_width():
    """Every column belongs to one slot and the slots appear in order."""
    strip = CdfStrip([0.01, 0.02, 0.5, 1.0], ["a", "b", "c", "d"])
    spans = list(strip.spans(50))
    assert sum(n for _, _, n in spans) == 50
    assert [s for s, _, _ in spans] == sorted(s for s, _, _ in spans)


def test_cdf_says_greedy_when_nothing_was_drawn():
    """Greedy picks draw no number, and the strip says so."""
    lines = text_lines(CdfStrip([1.0], ["␣the"], chosen=0), 60)
    assert lines[0].startswith("no random draw: greedy")


def test_cdf_marker_near_the_end_stays_inside():
    """A draw close to 1 puts its label to the left of the marker."""
    line = text_lines(CdfStrip([0.5, 1.0], ["a", "b"], chosen=1, u=0.99), 30)[0]
    assert line.endswith("▼") and cell_len(line) <= 30


# -- token chips -------------------------------------------------------------------


def test_chips_show_ids_and_mark_the_current_token():
    """Each chip is text·id; the current one is preceded by ▶."""
    chips = [Chip(1, "<s>"), Chip(403, "␣Once"), Chip(407, "␣upon", generated=True)]
    lines = text_lines(TokenChips(chips, current=2))
    assert lines == ["<s>·1 ␣Once·403 ▶␣upon·407"]


def test_chips_wrap_with_wide_and_right_to_left_text():
    """Emoji and Hebrew chips wrap within the width, never past it."""
    chips = [Chip(i, text) for i, text in enumerate(["😀🙂", "שלום", "␣a", "<E6>"] * 8)]
    lines = text_lines(TokenChips(chips, current=5), 24)
    assert len(lines) > 1
    assert all(cell_len(line) <= 24 for line in lines)


def test_a_chip_longer_than_the_line_is_cut():
    """A single very long token is cut with … rather than overflowing."""
    lines = text_lines(TokenChips([Chip(7, "x" * 100)]), 20)
    assert cell_len(lines[0]) <= 20 and "…" in lines[0]


# -- merges and small helpers ------------------------------------------------------


def test_merge_replay_of_a_real_encoding():
    """Replaying every merge of a real encoding ends at the final tokens."""
    tokenizer = load_model("stories260k").tokenizer
    encoding = tokenizer.encode("Once upon a time")
    total = len(encoding.merges)
    first = text_lines(MergeReplay(encoding.words, encoding.merges, 0))
    last = text_lines(MergeReplay(encoding.words, encoding.merges, total))
    assert first[0].startswith("BPE before any merge")
    assert last[0].startswith(f"merge {total} of {total}")
    assert last[1] == "␣Once│␣upon│␣a│␣time│"


def test_fit_and_window():
    """Text fits exact widths; the window keeps the current index in view."""
    assert fit("abcdef", 4) == "abc…" and fit("ab", 4) == "ab  "
    assert fit("😀😀😀", 4) == "😀 …"
    assert window(5, 2, 10) == range(5)
    assert window(100, 50, 10) == range(41, 51)
    assert window(100, 3, 10) == range(0, 10)


def test_tiny_temperature_and_huge_logits_stay_narrow() -> None:
    """5e-324 and a logit of 1e40 print in a bounded width."""
    from widgets.draw.cells import logit_number, setting_number

    assert setting_number(5e-324) == "4.94e-324"
    assert setting_number(40) == "40"
    assert logit_number(17.8, 8) == "   17.80"
    assert logit_number(-1.234e40, 8) == "-1.2e+40"
