"""Warnings for the reviewer: evidence that reads like orders to the agent, and a summary or
evidence that disagrees with the payload the agent asks to run.

Heuristics only, and deliberately loud: a false alarm costs a second look, a missed one can
cost money. They never decide; they tell the reviewer where to look, and the review page
offers a one-key rejection as suspected prompt injection.
"""

import re
from dataclasses import dataclass
from typing import Any

# Phrases that address the model rather than a human ("ignore all previous instructions").
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:instructions?|prompts?|rules?|guidelines)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions?\b|\bact as (?:an?|the)\b"
    r"|\bdo not (?:tell|inform|mention)\b|\bassistant:\s|\bsystem:\s",
    re.IGNORECASE,
)
# $22.25, 22.25 USD, USD 4,999: amounts a human wrote down.
_MONEY = re.compile(
    r"(?:[$€£]\s?(\d[\d,]*(?:\.\d+)?))|(?:(\d[\d,]*(?:\.\d+)?)\s?(?:USD|EUR|GBP|dollars?)\b)"
    r"|(?:\b(?:USD|EUR|GBP)\s?(\d[\d,]*(?:\.\d+)?))",
    re.IGNORECASE,
)
# Identifiers like cus_6666 or ord_123: compared with the payload's values of the same prefix.
_IDENT = re.compile(r"\b([a-z]{2,8})_([A-Za-z0-9]{2,40})\b")


@dataclass(frozen=True)
class Signal:
    kind: str  # "instruction" | "amount" | "identifier"
    message: str


def _texts(evidence: list[dict[str, Any]]) -> list[str]:
    out = []
    for item in evidence:
        for key in ("title", "content"):
            value = item.get(key)
            if isinstance(value, str):
                out.append(value)
            elif value is not None:
                out.append(str(value))
    return out


def _amounts(text: str) -> list[float]:
    found = []
    for match in _MONEY.finditer(text):
        raw = next(g for g in match.groups() if g)
        try:
            found.append(float(raw.replace(",", "")))
        except ValueError:
            continue
    return found


def _payload_amounts(payload: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in payload.items()
        if "amount" in k and isinstance(v, int | float) and not isinstance(v, bool)
    }


def _quote(text: str, start: int, end: int, width: int = 60) -> str:
    snippet = text[max(0, start - 10) : min(len(text), end + width)]
    return " ".join(snippet.split())[:120]


def signals(summary: str, payload: dict[str, Any], evidence: list[dict[str, Any]]) -> list[Signal]:
    """Everything worth a warning on this case, most serious first."""
    found: list[Signal] = []
    texts = _texts(evidence)
    for text in [summary, *texts]:
        match = _INSTRUCTION.search(text[:200_000])
        if match:
            quoted = _quote(text, match.start(), match.end())
            found.append(Signal("instruction", f"Text reads like an instruction to the agent: “{quoted}”"))
            break
    amounts = _payload_amounts(payload)
    if amounts:
        said = _amounts(summary)
        if said and not any(abs(s - a) < 0.005 for s in said for a in amounts.values()):
            pays = ", ".join(f"{v:,.2f}" for v in amounts.values())
            found.append(Signal("amount", f"The summary says {said[0]:,.2f}, but the action pays {pays}."))
    values = {v for v in payload.values() if isinstance(v, str)}
    prefixes = {m.group(1): v for v in values if (m := _IDENT.fullmatch(v))}
    strangers: list[str] = []
    for text in [summary, *texts]:
        for m in _IDENT.finditer(text[:200_000]):
            if m.group(1) in prefixes and m.group(0) not in values and m.group(0) not in strangers:
                strangers.append(m.group(0))
    if strangers:
        named = ", ".join(strangers[:3])
        mine = ", ".join(sorted(prefixes.values()))
        found.append(Signal("identifier", f"The text names {named}; the action is for {mine}."))
    return found
