"""Our own stylesheet's promises to people who need them."""

import re
from pathlib import Path

STYLESHEET = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"


def test_motion_in_our_stylesheet_stops_for_people_who_ask_for_less() -> None:
    """Any transition or animation we add must sit where `prefers-reduced-motion: reduce` turns it off."""
    css = STYLESHEET.read_text()
    reduce_block = re.search(r"@media \(prefers-reduced-motion: reduce\) \{(.*?)\n\}", css, re.S)
    assert reduce_block is not None, "app.css must turn motion off for prefers-reduced-motion: reduce"
    assert "animation: none" in reduce_block.group(1) and "transition: none" in reduce_block.group(1)
    elsewhere = css.replace(reduce_block.group(0), "")
    moving = re.findall(r"(?:transition|animation)(?:-[a-z-]+)?\s*:\s*(?!none)[^;]+", elsewhere)
    no_preference = re.findall(r"@media \(prefers-reduced-motion: no-preference\)", css)
    assert not moving or no_preference, f"motion outside a no-preference block: {moving}"
