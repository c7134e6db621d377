"""Exact checks on response text: counts, lists, titles, greetings, words used or avoided.

A check decides a structure criterion from the final response text, with no judge. Checks (``check``), decided on the final response text; ``"negate": true`` inverts any of them:

- ``{"type": "words" | "sentences" | "lines" | "paragraphs" | "items", OP: N}`` with OP one of
  ``lt``, ``le``, ``gt``, ``ge``, ``eq``: a count compared with N (items are list lines).
- ``{"type": "numbered_list" | "bullet_list" | "list"}``: at least two such list lines.
- ``{"type": "title" | "greeting" | "sign_off" | "question" | "digits"}``.
- ``{"type": "contains" | "starts_with", "text": "..."}``: a word or phrase (case-insensitive,
  whole words) anywhere, or at the very start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
}


class CheckFormatError(ValueError):
    """A check specification that cannot be read; the message starts with where it was read."""


# ---- counting and checks on response text ------------------------------------------------------
_LIST_MARKER = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022])\s+")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+\S")
_BULLET = re.compile(r"^\s*[-*\u2022]\s+\S")
_ABBREVIATIONS = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|vs|etc|e\.g|i\.e|approx|No)\.", re.IGNORECASE)
_GREETING = re.compile(r"^(?:dear|hi|hello|hey|greetings|good (?:morning|afternoon|evening)|to)\b", re.IGNORECASE)
_CLOSINGS = (
    "love",
    "best",
    "best wishes",
    "all the best",
    "yours",
    "yours truly",
    "yours sincerely",
    "sincerely",
    "thanks",
    "thank you",
    "many thanks",
    "thanks again",
    "thank you again",
    "cheers",
    "warmly",
    "warm regards",
    "regards",
    "kind regards",
    "best regards",
    "with love",
    "lots of love",
    "your friend",
    "your pal",
    "from",
    "hugs",
    "take care",
    "see you soon",
    "talk soon",
    "with thanks",
    "gratefully",
    "respectfully",
    "xoxo",
    "your student",
    "your buddy",
)


def lines_of(text: str) -> list[str]:
    """The non-empty lines, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def count_words(text: str) -> int:
    """Words: whitespace-separated pieces holding a letter or digit, list markers not counted."""
    body = "\n".join(_LIST_MARKER.sub("", line) for line in text.splitlines())
    return sum(1 for piece in body.split() if re.search(r"\w", piece))


def count_sentences(text: str) -> int:
    """Sentences: pieces ending in . ! or ? (common abbreviations do not end one); a line without
    an end mark (a list item, a title) counts as one."""
    count = 0
    for line in lines_of(text):
        line = _ABBREVIATIONS.sub(lambda m: m.group(0).replace(".", "\u2024"), _LIST_MARKER.sub("", line))
        count += sum(1 for piece in re.split(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+", line) if re.search(r"\w", piece))
    return count


def count_paragraphs(text: str) -> int:
    """Blocks of text separated by blank lines."""
    return sum(1 for block in re.split(r"\n\s*\n", text.strip()) if block.strip())


def list_lines(text: str, pattern: re.Pattern = _LIST_MARKER) -> int:
    return sum(1 for line in text.splitlines() if pattern.match(line))


def _is_short_line(line: str, words: int) -> bool:
    return 0 < count_words(line) <= words and not line.rstrip().endswith((".", "!", "?", ";", ":"))


def has_title(text: str) -> bool:
    """A short first line (at most 12 words, no end mark, not a list item or greeting) above a body."""
    lines = [line for line in text.strip().splitlines()]
    if len(lines_of(text)) < 2:
        return False
    first = lines[0].strip().strip("#*_ ").strip()
    return (
        _is_short_line(first, 12)
        and not _LIST_MARKER.match(lines[0])
        and not first.endswith(",")
        and not _GREETING.match(first)
    )


def has_greeting(text: str) -> bool:
    """The first line greets someone ("Dear Sam,", "Hi Mum!") in at most 8 words."""
    found = lines_of(text)
    return bool(found) and bool(_GREETING.match(found[0])) and count_words(found[0]) <= 8


def has_sign_off(text: str) -> bool:
    """The response ends with a closing and a name: "Love,\\nMia", "Best wishes, Tom" or "- Max"."""
    found = lines_of(text)
    if len(found) < 2:
        return False
    last, before = found[-1], found[-2]
    if last.startswith(("-", "\u2014", "\u2013")) and 0 < count_words(last) <= 5:
        return True
    closing = before.rstrip(",!").strip().lower()
    if before.endswith((",", "!")) and count_words(before) <= 5 and _is_short_line(last, 5):
        return closing.startswith(_CLOSINGS) or count_words(before) <= 3
    head, sep, name = last.partition(",")
    return bool(sep) and head.strip().lower() in _CLOSINGS and 0 < count_words(name) <= 4


def contains_phrase(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", text, re.IGNORECASE) is not None


_COUNTS: dict[str, Callable[[str], int]] = {
    "words": count_words,
    "sentences": count_sentences,
    "lines": lambda t: len(lines_of(t)),
    "paragraphs": count_paragraphs,
    "items": list_lines,
}
_FLAGS: dict[str, Callable[[str], bool]] = {
    "numbered_list": lambda t: list_lines(t, _NUMBERED) >= 2,
    "bullet_list": lambda t: list_lines(t, _BULLET) >= 2,
    "list": lambda t: list_lines(t) >= 2,
    "title": has_title,
    "greeting": has_greeting,
    "sign_off": has_sign_off,
    "question": lambda t: re.search(r"\?[\"'\u201d\u2019)]*(?:\s|$)", t) is not None,
    "digits": lambda t: re.search(r"\d", t) is not None,
}
_PHRASES: dict[str, Callable[[str, str], bool]] = {
    "contains": contains_phrase,
    "starts_with": lambda t, p: t.lstrip().lower().startswith(p.strip().lower()),
}
CHECK_TYPES = tuple(_COUNTS) + tuple(_FLAGS) + tuple(_PHRASES)


@dataclass(frozen=True)
class Check:
    """A structure check: ``type`` plus an operator and number, or a text (see the module doc)."""

    type: str
    op: Optional[str] = None
    value: Optional[int] = None
    text: Optional[str] = None
    negate: bool = False

    @classmethod
    def parse(cls, spec: Any, where: str) -> Check:
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise CheckFormatError(f"{where}: check must be an object with a 'type', got {spec!r}")
        kind, negate = spec["type"], spec.get("negate", False)
        if kind not in CHECK_TYPES:
            raise CheckFormatError(f"{where}: unknown check type {kind!r}; known: {', '.join(CHECK_TYPES)}")
        if not isinstance(negate, bool):
            raise CheckFormatError(f"{where}: check 'negate' must be true or false, got {negate!r}")
        allowed = {"type", "negate"}
        if kind in _COUNTS:
            ops = [op for op in COMPARISONS if op in spec]
            if len(ops) != 1:
                raise CheckFormatError(f"{where}: a {kind!r} check needs exactly one of {list(COMPARISONS)}")
            value = spec[ops[0]]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CheckFormatError(f"{where}: {kind} {ops[0]} must be a whole number >= 0, got {value!r}")
            allowed.add(ops[0])
            check = cls(kind, ops[0], value, negate=negate)
        elif kind in _PHRASES:
            text = spec.get("text")
            if not isinstance(text, str) or not text.strip():
                raise CheckFormatError(f"{where}: a {kind!r} check needs a non-empty 'text'")
            allowed.add("text")
            check = cls(kind, text=text, negate=negate)
        else:
            check = cls(kind, negate=negate)
        extra = sorted(set(spec) - allowed)
        if extra:
            raise CheckFormatError(f"{where}: check {kind!r} does not take {extra}")
        return check

    def __call__(self, text: str) -> bool:
        if self.type in _COUNTS:
            result = COMPARISONS[self.op](_COUNTS[self.type](text), self.value)
        elif self.type in _PHRASES:
            result = _PHRASES[self.type](text, self.text)
        else:
            result = _FLAGS[self.type](text)
        return result != self.negate
