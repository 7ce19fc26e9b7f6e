"""Partner themes: hex only, and WCAG AA contrast between the primary colour and the theme's backgrounds."""

import pytest

from webapp.embed.theme import Theme, ThemeError, contrast_ratio


def test_contrast_ratio_matches_known_pairs() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("primary", "mode"),
    [("#0b57d0", "light"), ("#595959", "light"), ("#5B2C83", "light"), ("#8ab4f8", "dark"), ("#ffcc00", "dark")],
)
def test_colours_with_enough_contrast_are_accepted(primary: str, mode: str) -> None:
    theme = Theme.checked(primary, mode)
    assert theme.primary == primary.lower()
    assert f"--brand: {primary.lower()};" in theme.css


@pytest.mark.parametrize(
    ("primary", "mode", "message"),
    [
        ("#767676", "light", "contrast 4.1"),
        ("#ffff00", "light", "contrast 1.0"),
        ("#0b57d0", "dark", "contrast"),
        ("red", "light", "hex"),
        ("#fff", "light", "hex"),
        ("#12345g", "light", "hex"),
        ("#000000; } body { display: none", "light", "hex"),
        ("#000000", "sepia", "light or dark"),
    ],
)
def test_colours_without_contrast_or_not_hex_are_refused(primary: str, mode: str, message: str) -> None:
    with pytest.raises(ThemeError, match=message):
        Theme.checked(primary, mode)
