"""Partner themes: hex colours only, and a primary colour must keep WCAG AA contrast (4.5:1) with the text on it.

The primary colour fills buttons, labelled in the mode's paper colour, and colours links on the paper and
the page background: it is checked against both. The rest of each mode's palette is fixed in `app.css`.
"""

import re
from dataclasses import dataclass

HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
AA_NORMAL_TEXT = 4.5
# The paper (cards, button labels) and wash (page background) of each mode, as `app.css` sets them.
BACKGROUNDS = {"light": ("#ffffff", "#f3f5f8"), "dark": ("#16191d", "#0f1114")}


class ThemeError(ValueError):
    pass


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of `#rrggbb`."""
    channels = [int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


@dataclass(frozen=True)
class Theme:
    primary: str
    mode: str

    @classmethod
    def checked(cls, primary: str, mode: str) -> "Theme":
        """A theme, or ThemeError saying why it is refused (not hex, unknown mode, too little contrast)."""
        if not HEX_COLOUR.fullmatch(primary or ""):
            raise ThemeError(f"primary colour {primary!r} is not a #rrggbb hex colour")
        if mode not in BACKGROUNDS:
            raise ThemeError(f"theme mode {mode!r} is not light or dark")
        ratio = min(contrast_ratio(primary, background) for background in BACKGROUNDS[mode])
        if ratio < AA_NORMAL_TEXT:
            raise ThemeError(
                f"primary colour {primary} has contrast {ratio:.2f}:1 with the {mode} theme's text and "
                f"backgrounds; WCAG AA needs {AA_NORMAL_TEXT}:1"
            )
        return cls(primary.lower(), mode)

    @property
    def css(self) -> str:
        """The custom properties the embedded layout sets: only validated hex, so safe inside `<style>`."""
        return f":root {{ --brand: {self.primary}; --brand-ink: {BACKGROUNDS[self.mode][0]}; }}"
