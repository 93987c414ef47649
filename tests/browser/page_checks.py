"""Checks every browser test of a page can run: axe-core (from npm, node_modules/axe-core) finds no serious or
critical violation, a phone-sized viewport needs no sideways scrolling, and a screenshot of the page at desktop
and phone sizes is saved under var/screenshots/ for people to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SERIOUS = {"serious", "critical"}
# The elements that reach past the viewport's right edge, outermost first: what to fix when a page overflows.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 8)
  .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${(el.textContent || '').trim().slice(0, 30)}`)"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The script is evaluated through the
    browser's debugging protocol, which the page's Content-Security-Policy does not govern."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


def sideways_overflow(page: Any) -> int:
    """How many CSS pixels wider than the viewport the page is (0: nothing to scroll sideways)."""
    return int(page.evaluate("() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"))


def check_page(page: Any, name: str) -> None:
    """Accessibility at desktop size, then fit and screenshots at both sizes; the viewport is left at desktop."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    violations = axe_violations(page)
    assert not violations, f"{name}: axe-core found {violations}"
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(PHONE)
    overflow = sideways_overflow(page)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    assert overflow == 0, f"{name}: {overflow}px wider than a phone's screen: {page.evaluate(WIDEST)}"
    assert not axe_violations(page), f"{name}: axe-core violations at phone size"
    page.set_viewport_size(DESKTOP)
