"""Colour scales for heatmaps and bars: a value becomes a symbol and a colour.

Every colour comes with a symbol (a shade character or a sign) so that a reader
without colour, or without full colour vision, still reads the value. The default
sequential palette is viridis; cividis and a purple-orange diverging palette (for
signed values) are also offered. All three stay distinct under the common forms of
colour-vision deficiency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from rich.color import Color
from rich.style import Style

# Anchor colours sampled evenly along each published colour map; between anchors
# the colour is interpolated linearly in RGB, which is close enough at 32 levels.
ANCHORS: dict[str, tuple[str, ...]] = {
    "viridis": (
        "#440154", "#482878", "#3e4989", "#31688e", "#26828e",
        "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725",
    ),
    "cividis": ("#00224e", "#35456c", "#666970", "#958f78", "#cbba69", "#fee838"),
    "purple-orange": ("#5e3c99", "#b2abd2", "#8c8c8c", "#fdb863", "#e66101"),
}  # fmt: skip

PALETTES = tuple(ANCHORS)
COLOUR_LEVELS = 32  # distinct colours per palette; styles are cached per level
SHADES = "·░▒▓█"  # magnitude symbols, weakest first
MASKED = " "  # a cell the model could not attend to (the causal triangle)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    """The red, green and blue bytes of a `#rrggbb` colour."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return red, green, blue


@cache
def colour_at(palette: str, level: int) -> Color:
    """The colour of `level` (0..COLOUR_LEVELS-1) along `palette`."""
    anchors = [_rgb(a) for a in ANCHORS[palette]]
    t = level / (COLOUR_LEVELS - 1) * (len(anchors) - 1)
    i = min(int(t), len(anchors) - 2)
    f = t - i
    mix = (
        round(a + (b - a) * f) for a, b in zip(anchors[i], anchors[i + 1], strict=True)
    )
    return Color.from_rgb(*mix)


def readable_on(colour: Color) -> Color:
    """Black or white, whichever reads better as text on `colour`."""
    r, g, b = colour.get_truecolor()
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return Color.parse("black" if luminance > 128 else "white")


@dataclass(frozen=True)
class Scale:
    """Maps numbers in [low, high] to a symbol and a colour.

    A signed scale (low < 0 < high) puts zero in the middle of a diverging palette
    and writes the sign before the shade, so `-▓` and `+▓` read apart in monochrome.
    """

    low: float = 0.0
    high: float = 1.0
    palette: str = "viridis"
    _styles: dict[tuple[int, bool], Style] = field(
        default_factory=dict, compare=False, repr=False
    )
    _pieces: dict[int, tuple[str, Style]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def signed(self) -> bool:
        """Whether values run either side of zero."""
        return self.low < 0 < self.high

    def fraction(self, value: float) -> float:
        """Where `value` falls between low (0.0) and high (1.0), clipped."""
        if not math.isfinite(value):
            return 0.0
        span = self.high - self.low
        return min(1.0, max(0.0, (value - self.low) / span)) if span > 0 else 0.0

    def level(self, value: float) -> int:
        """The colour level of `value`, 0..COLOUR_LEVELS-1."""
        return min(COLOUR_LEVELS - 1, int(self.fraction(value) * COLOUR_LEVELS))

    def magnitude(self, value: float) -> float:
        """How strong `value` is, 0..1: distance from zero (signed) or from low."""
        if not self.signed:
            return self.fraction(value)
        top = max(self.high, -self.low)
        return min(1.0, abs(value) / top) if math.isfinite(value) else 0.0

    def symbol(self, value: float) -> str:
        """The shade of `value`'s magnitude, after its sign when the scale is signed."""
        index = min(len(SHADES) - 1, int(self.magnitude(value) * len(SHADES)))
        shade = SHADES[index]
        if not self.signed:
            return shade
        return (" " if index == 0 else "-" if value < 0 else "+") + shade

    def codes(self, values: np.ndarray) -> np.ndarray:
        """One small integer per value naming its symbol and colour; NaN is -1.

        The whole matrix is classified at once with numpy, so drawing a row is a
        lookup per run of equal codes rather than arithmetic per cell.
        """
        finite = np.isfinite(values)
        safe = np.where(finite, values, self.low)
        span = self.high - self.low
        fraction = np.clip((safe - self.low) / span, 0, 1) if span > 0 else safe * 0
        level = np.minimum(COLOUR_LEVELS - 1, (fraction * COLOUR_LEVELS).astype(int))
        if self.signed:
            magnitude = np.minimum(1.0, np.abs(safe) / max(self.high, -self.low))
        else:
            magnitude = fraction
        shade = np.minimum(len(SHADES) - 1, (magnitude * len(SHADES)).astype(int))
        negative = (safe < 0) & (shade > 0) & self.signed
        code = (level * len(SHADES) + shade) * 2 + negative
        return np.where(finite, code, -1)  # [same shape as values]

    def piece(self, code: int) -> tuple[str, Style]:
        """The symbol and style a code from `codes` stands for."""
        cached = self._pieces.get(code)
        if cached is None:
            negative, rest = code % 2, code // 2
            level, shade = divmod(rest, len(SHADES))
            symbol = SHADES[shade]
            if self.signed:
                symbol = (" " if shade == 0 else "-" if negative else "+") + symbol
            cached = (symbol, Style(color=colour_at(self.palette, level)))
            self._pieces[code] = cached
        return cached

    def style(self, value: float, filled: bool = False) -> Style:
        """The cached style of `value`: coloured text, or a filled cell with text."""
        key = (self.level(value), filled)
        style = self._styles.get(key)
        if style is None:
            colour = colour_at(self.palette, key[0])
            if filled:
                style = Style(color=readable_on(colour), bgcolor=colour)
            else:
                style = Style(color=colour)
            self._styles[key] = style
        return style

    def legend(self) -> list[tuple[str, str]]:
        """(symbol, value range) pairs explaining each shade, weakest first."""
        n, pairs = len(SHADES), []
        top = max(self.high, -self.low)
        span = self.high - self.low
        for i, shade in enumerate(SHADES):
            if self.signed:
                label = f"|x| {i / n * top:.2g}–{(i + 1) / n * top:.2g}"
            else:
                a, b = self.low + i / n * span, self.low + (i + 1) / n * span
                label = f"{a:.2g}–{b:.2g}"
            pairs.append((shade, label))
        return pairs
