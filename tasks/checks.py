"""Exact checks on response text: counts, lists, titles, greetings, words used or avoided.

A check decides a structure criterion from the final response text, with no judge. Checks (``check``), decided on the final response text; ``"negate": true`` inverts any of them:

- ``{"type": "words" | "sentences" | "lines" | "paragraphs" | "items", OP: N}`` with OP one of
  ``lt``, ``le``, ``gt``, ``ge``, ``eq``: a count compared with N (items are list lines).
- ``{"type": "numbered_list" | "bullet_list" | "list"}``: at least two such list lines.
- ``{"type": "title" | "greeting" | "sign_off" | "question" | "ends_with_question" | "digits"}``
  (``ends_with_question``: the last sentence is a question).
- ``{"type": "contains" | "starts_with", "text": "..."}``: a word or phrase (case-insensitive,
  whole words) anywhere, or at the very start.

A response with no words meets no check: an empty response keeps no limit and avoids nothing, so it
is not paid for a word limit or an avoided word (at a high learning rate a policy collapses to one
there).

A met check also says where it is decided (``Check.evidence``): the characters of the phrase, the
title or greeting line, the sign-off lines, the question sentences, the digits; or the whole
response (counts, lists, anything negated). ``recognise`` reads a check out of a criterion's
wording where it parses exactly ("Is under 150 words", "Avoids the word 'basically'").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
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
    return _sign_off_lines(text) > 0


def _sign_off_lines(text: str) -> int:
    """How many of the last non-empty lines are a sign-off: 1 for "- Max" or "Best wishes, Tom",
    2 for a closing line above a name, 0 for none."""
    found = lines_of(text)
    if len(found) < 2:
        return 0
    last, before = found[-1], found[-2]
    if last.startswith(("-", "\u2014", "\u2013")) and 0 < count_words(last) <= 5:
        return 1
    closing = before.rstrip(",!").strip().lower()
    if before.endswith((",", "!")) and count_words(before) <= 5 and _is_short_line(last, 5):
        return 2 if closing.startswith(_CLOSINGS) or count_words(before) <= 3 else 0
    head, sep, name = last.partition(",")
    return 1 if sep and head.strip().lower() in _CLOSINGS and 0 < count_words(name) <= 4 else 0


def _phrase_pattern(phrase: str) -> re.Pattern:
    """The phrase as whole words: no letter or digit right before or after it."""
    return re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", re.IGNORECASE)


def contains_phrase(text: str, phrase: str) -> bool:
    return _phrase_pattern(phrase).search(text) is not None


def starts_with_phrase(text: str, phrase: str) -> bool:
    """The text opens with the phrase (case-insensitive), not followed by more of the same word."""
    return _phrase_pattern(phrase).match(text.lstrip()) is not None


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
    "ends_with_question": lambda t: re.search(r"\?[\"'\u201d\u2019)]*$", t.rstrip()) is not None,
    "digits": lambda t: re.search(r"\d", t) is not None,
}
_PHRASES: dict[str, Callable[[str, str], bool]] = {
    "contains": contains_phrase,
    "starts_with": starts_with_phrase,
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

    def to_spec(self) -> dict:
        """The check as the object ``parse`` reads (the ``check`` field of a criterion)."""
        spec: dict[str, Any] = {"type": self.type}
        if self.op is not None:
            spec[self.op] = self.value
        if self.text is not None:
            spec["text"] = self.text
        if self.negate:
            spec["negate"] = True
        return spec

    def __call__(self, text: str) -> bool:
        if not count_words(text):  # nothing to keep under a limit or to avoid a word in: no check is met
            return False
        if self.type in _COUNTS:
            result = COMPARISONS[self.op](_COUNTS[self.type](text), self.value)
        elif self.type in _PHRASES:
            result = _PHRASES[self.type](text, self.text)
        else:
            result = _FLAGS[self.type](text)
        return result != self.negate

    def evidence(self, text: str) -> Optional[list[tuple[int, int]]]:
        """The character spans [start, end) of ``text`` that make this check met, or None when the
        whole response decides it (counts, lists, a negated check: met by what is absent) or when
        the check is not met."""
        if self.negate or not self(text):
            return None
        if self.type in _PHRASES:
            if self.type == "starts_with":
                start = len(text) - len(text.lstrip())
                return [_phrase_pattern(self.text).match(text, start).span()]
            return [m.span() for m in _phrase_pattern(self.text).finditer(text)]
        if self.type in ("title", "greeting"):
            return [_line_spans(text)[0]]
        if self.type == "sign_off":
            return _line_spans(text)[-_sign_off_lines(text) :]
        if self.type == "question":
            return _question_spans(text)
        if self.type == "ends_with_question":
            return _question_spans(text)[-1:]
        if self.type == "digits":
            return [m.span() for m in re.finditer(r"\d+", text)]
        return None


def _line_spans(text: str) -> list[tuple[int, int]]:
    """The character spans of the non-empty lines, without their surrounding whitespace."""
    return [(m.start(), m.end()) for m in re.finditer(r"[^\S\n]*\S[^\n]*", text)]


def _question_spans(text: str) -> list[tuple[int, int]]:
    """The sentences that end in a question mark: from the end of the sentence, line or list
    marker before it to the mark (and any closing quote)."""
    spans = []
    for mark in re.finditer(r"\?[\"'\u201d\u2019)]*(?=\s|$)", text):
        start = mark.start()
        while (
            start > 0
            and text[start - 1] != "\n"
            and not (text[start - 1].isspace() and text[start - 2 : start - 1] in (".", "!", "?"))
        ):
            start -= 1
        line_start = text.rfind("\n", 0, mark.start()) + 1
        marker = _LIST_MARKER.match(text, line_start)
        if marker and start < marker.end():
            start = marker.end()
        while text[start].isspace():
            start += 1
        spans.append((start, mark.end()))
    return spans


# ---- reading a check out of a criterion's wording ----------------------------------------------
# A criterion is recognised only when the whole of it parses as one of these phrasings, so a check
# stands for it exactly; anything more ("Uses a numbered list of steps for the recipe",
# "Uses the words 'a' and 'b'") is left to the judge.
_SUBJECTS = "response|answer|reply"  # only names of the whole response: "the summary" may be a part of it
_SUBJECT = rf"(?:(?:the|this|your) (?:whole |entire |full )?(?:{_SUBJECTS})|response|it)"
_PREFIX = rf"^(?:{_SUBJECT} )?(?:(?:should|must|will) )?"
_NEGATION = r"(?:does not|doesn't|do not|don't|should not|shouldn't|must not|will not|never)"
_SMALL_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER = (
    rf"(?P<n>\d{{1,5}}|(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_SMALL_NUMBERS[1:10])}))?|"
    rf"(?:{'|'.join(reversed(_SMALL_NUMBERS))})|(?:a|one) hundred|a single|just one|only one)"
)
_UNITS = {
    "word": "words",
    "sentence": "sentences",
    "line": "lines",
    "paragraph": "paragraphs",
    "bullet point": "items",
    "bullet": "items",
    "list item": "items",
    "list entry": "items",
    "list entries": "items",
    "list point": "items",
    "point in its list": "items",
    "points in its list": "items",
    "item in its list": "items",
    "items in its list": "items",
}
_UNIT = rf"(?P<unit>(?:{'|'.join(sorted(_UNITS, key=len, reverse=True))})s?)"
_BEFORE = {  # comparisons written before the number
    "lt": "under|fewer than|less than|below|shorter than",
    "le": "at most|no more than|not more than|no longer than|up to|within|a maximum of",
    "ge": "at least|no fewer than|no less than|a minimum of",
    "gt": "more than|over|longer than|greater than",
    "eq": "exactly|precisely",
}
_AFTER = {  # and after the unit
    "le": "or fewer|or less|or shorter|at most|at the most|max",
    "ge": "or more|or longer|at least|at minimum",
    "eq": "no more and no fewer|no more, no fewer|no more and no less|no more, no less",
}
_BEFORE_RE = "|".join(rf"(?P<b_{op}>{words})" for op, words in _BEFORE.items())
_AFTER_RE = "|".join(rf"(?P<a_{op}>{words})" for op, words in _AFTER.items())
_MIDDLE_RE = "|".join(rf"(?P<m_{op}>{words})" for op, words in _AFTER.items() if op != "eq")
_QUANTITY = (
    rf"(?:(?:{_BEFORE_RE}) )?{_NUMBER}(?: (?:{_MIDDLE_RE}))? {_UNIT}(?: (?:long|in length|in total|total))?"
    rf"(?:,? (?:{_AFTER_RE}))?"
)
_COUNT_VERBS = {  # verb -> whether a bare number means "exactly"
    r"(?:is|be)(?: written in| written as)?": True,
    r"(?:consists|consist) of|(?:is|be) made (?:up )?of": True,
    r"(?:has|have|uses|use|contains|contain|includes|include|lists|list|runs to|run to|stays|stay|comes in(?: at)?"
    r"|come in(?: at)?|takes up|take up|keeps to|keep to|runs|run|gives|give)": False,
    rf"(?:keeps|keep) (?:the|its) (?:whole |entire )?(?:{_SUBJECTS})(?: to)?": False,
    r"(?:fits|fit) in": False,
}
_QUOTED = (
    r"(?:\"(?P<q1>[^\"]+)\"|'(?P<q2>(?:[^'\"]|(?<=\w)'(?=\w))+)'|\u201c(?P<q3>[^\u201d]+)\u201d|"
    r"\u2018(?P<q4>(?:[^\u2019']|(?<=\w)[\u2019'](?=\w))+)\u2019)"
)
_WORD = r"(?:the (?:exact )?(?:word|words|phrase|term|expression) )?"
_USE = r"(?:uses|use|includes|include|contains|contain|mentions|mention|says|say)"
_USE_BASE = r"(?:use|include|contain|mention|say)"
_HAS_WORDS = "has|have|includes|include|contains|contain"
_HAS = rf"(?:{_HAS_WORDS})"
_READER = "(?:the reader|the user|readers|the person asking)"
_FORMATTED = r"(?:is|be) (?:formatted|written|laid out|presented|organi[sz]ed|structured|set out)"
_BULLETS = r"(?:bullet points|bullets|a bullet(?:ed)? list|bulleted items|a list of bullet points)"
_NUMBERED_LIST = r"(?:a numbered list(?: of steps)?|numbered (?:items|steps))"
_EITHER = (
    r"(?:a list|a (?:bulleted|bullet) or numbered list|a numbered or bullet(?:ed)? list|bullet points or a numbered "
    r"list|a numbered list or bullet points|bullet points or numbered items|a list, (?:bulleted or numbered|numbered or "
    r"bulleted)|a list with bullets or numbers|list items)"
)
_LAYOUT_VERBS = (
    rf"(?:uses|use|{_HAS_WORDS}|{_FORMATTED} (?:as|in|with)|(?:presents|present|gives|give|sets|set) (?:out )?"
    r"(?:its|the|their) (?:[a-z-]+ ){0,2}[a-z-]+ (?:as|in))"
)
_ENDS = r"(?:ends|end|closes|close|finishes|finish|concludes|conclude)"


def _number(text: str) -> int:
    text = text.lower()
    if text.isdigit():
        return int(text)
    if text in ("a single", "just one", "only one"):
        return 1
    if text.endswith("hundred"):
        return 100
    parts = re.split(r"[- ]", text)
    if parts[0] in _TENS:
        return _TENS[parts[0]] + (_SMALL_NUMBERS.index(parts[1]) if len(parts) > 1 else 0)
    return _SMALL_NUMBERS.index(parts[0])


def _count_check(match: re.Match, bare_is_exact: bool) -> Optional[Check]:
    groups = {name: value for name, value in match.groupdict().items() if value is not None}
    ops = [name[2:] for name in groups if name[:2] in ("b_", "m_", "a_")]
    if len(ops) > 1:
        return None
    if not ops and not bare_is_exact:
        return None
    unit = groups["unit"].lower()
    return Check(
        _UNITS.get(unit) or _UNITS[unit.removesuffix("s")],
        ops[0] if ops else "eq",
        _number(groups["n"]),
    )


def _quoted(match: re.Match) -> str:
    return next(match.group(g) for g in ("q1", "q2", "q3", "q4") if match.group(g) is not None)


_PHRASINGS: list[tuple[str, Callable[[re.Match], Optional[Check]]]] = [
    *[
        (rf"(?:{verb}) {_QUANTITY}", lambda m, exact=exact: _count_check(m, exact))
        for verb, exact in _COUNT_VERBS.items()
    ],
    (rf"there (?:are|is) {_QUANTITY} in the (?:{_SUBJECTS})", lambda m: _count_check(m, True)),
    (rf"(?:is|be) a list of {_NUMBER} (?:items|points|entries)", lambda m: Check("items", "eq", _number(m["n"]))),
    (
        rf"(?:keeps|keep) (?:its|the) list to {_NUMBER} (?:points|items|entries)(?:,? (?:or fewer|at most))",
        lambda m: Check("items", "le", _number(m["n"])),
    ),
    (rf"{_NEGATION} go over {_NUMBER} {_UNIT}", lambda m: Check(_count_check(m, True).type, "le", _number(m["n"]))),
    (rf"(?:goes|go) over {_NUMBER} {_UNIT}", lambda m: Check(_count_check(m, True).type, "gt", _number(m["n"]))),
    (rf"(?:exceeds|exceed) {_NUMBER} {_UNIT}", lambda m: Check(_count_check(m, True).type, "gt", _number(m["n"]))),
    (rf"{_NEGATION} exceed {_NUMBER} {_UNIT}", lambda m: Check(_count_check(m, True).type, "le", _number(m["n"]))),
    # words and phrases, quoted
    (rf"{_USE} {_WORD}{_QUOTED}(?: somewhere)?", lambda m: Check("contains", text=_quoted(m))),
    (
        rf"the (?:word|phrase|term) {_QUOTED} (?:appears|is used)(?: in the (?:{_SUBJECTS}))?",
        lambda m: Check("contains", text=_quoted(m)),
    ),
    (
        rf"(?:avoids|avoid) (?:using |saying )?{_WORD}{_QUOTED}",
        lambda m: Check("contains", text=_quoted(m), negate=True),
    ),
    (
        rf"{_NEGATION} (?:{_USE_BASE}|{_USE}) {_WORD}{_QUOTED}",
        lambda m: Check("contains", text=_quoted(m), negate=True),
    ),
    (
        rf"the (?:word|phrase|term) {_QUOTED} (?:does not|never) appears?(?: in the (?:{_SUBJECTS}))?",
        lambda m: Check("contains", text=_quoted(m), negate=True),
    ),
    (
        rf"(?:starts|start|begins|begin|opens|open) with (?:the (?:exact )?(?:words?|phrase|sentence) )?{_QUOTED}",
        lambda m: Check("starts_with", text=_quoted(m)),
    ),
    # layout
    (rf"{_LAYOUT_VERBS} {_NUMBERED_LIST}|(?:is|be) {_NUMBERED_LIST}", lambda m: Check("numbered_list")),
    (rf"{_LAYOUT_VERBS} {_BULLETS}|(?:is|be) a bullet(?:ed)? list", lambda m: Check("bullet_list")),
    (rf"{_LAYOUT_VERBS} {_EITHER}", lambda m: Check("list")),
    (
        r"(?:enumerates|enumerate|numbers|number) (?:its|the) (?:points|steps|items) (?:with numbers|1, 2, 3)"
        r"|(?:gives|give|uses|use) numbered steps",
        lambda m: Check("numbered_list"),
    ),
    (r"(?:lists|list) (?:its|the) points with bullets", lambda m: Check("bullet_list")),
    (
        rf"(?:enumerates|enumerate) (?:its|the) points as list items|(?:breaks|break) (?:the|its) (?:{_SUBJECTS}) "
        r"into (?:a list|list items)",
        lambda m: Check("list"),
    ),
    (
        rf"(?:uses|use) no lists?|{_NEGATION} (?:use|include|contain) (?:a list|lists|any lists?)"
        rf"|{_NEGATION} break (?:the|its) (?:{_SUBJECTS}) into (?:a list|list items)"
        r"|(?:avoids|avoid) (?:bullet points and numbered lists|numbered lists and bullet points|lists)"
        r"|(?:is|be) written (?:as|in) prose,? (?:without|with no) (?:a list|lists|any list)",
        lambda m: Check("list", negate=True),
    ),
    # title, greeting, sign-off, question, digits
    (
        rf"(?:{_HAS}|(?:starts|start|begins|begin|opens|open) with|(?:is|be) given) a (?:title|heading)(?: line)?(?: at the top)?"
        rf"|(?:gives|give) (?:the|its) (?:{_SUBJECTS}|piece|text) a (?:title|heading)",
        lambda m: Check("title"),
    ),
    (
        rf"(?:{_HAS}|(?:starts|start|begins|begin|opens|open) with) a (?:greeting|salutation)"
        r"|(?:starts|start|begins|begin|opens|open) by greeting (?:someone|the reader|its reader)"
        r"(?:,? (?:such as|like|for example|e\.g\.) .+)?",
        lambda m: Check("greeting"),
    ),
    (
        r"(?:ends|end|closes|close|finishes|finish) with a (?:sign-?off|closing)(?: line| phrase)? (?:and|followed by) (?:a|the "
        r"(?:writer's|sender's|author's)|their) name|(?:is|be) signed off with (?:a|the writer's|the sender's) name"
        r"(?: at the end)?",
        lambda m: Check("sign_off"),
    ),
    (
        rf"(?:asks|ask|poses|pose|{_HAS_WORDS}) (?:{_READER} )?(?:a|at least one|one or more) questions?"
        rf"(?: (?:for|to|of) {_READER})?",
        lambda m: Check("question"),
    ),
    (
        rf"(?:asks|ask|poses|pose|{_HAS_WORDS}) no questions?|{_NEGATION} (?:ask|pose|contain|include) any questions?",
        lambda m: Check("question", negate=True),
    ),
    (
        rf"{_ENDS} (?:with|on) a question(?: (?:for|to|addressed to) {_READER})?"
        rf"|{_ENDS} by asking (?:{_READER} )?a question(?: (?:for|to|of) {_READER})?",
        lambda m: Check("ends_with_question"),
    ),
    (
        rf"(?:{_USE}|{_HAS_WORDS}|gives|give) (?:a|at least one) (?:number written in digits|numeral|digit|figure in digits)"
        r"|(?:uses|use) digits(?: for (?:a|at least one) number)?",
        lambda m: Check("digits"),
    ),
    (
        rf"(?:{_HAS_WORDS}|uses|use) no (?:digits|numerals)|{_NEGATION} (?:contain|include|use) any (?:digits|numerals)"
        r"|(?:writes|write) no numbers in (?:digits|digit form)|(?:spells|spell) out every number(?: instead of using digits)?",
        lambda m: Check("digits", negate=True),
    ),
]
_RECOGNISERS = [(re.compile(_PREFIX + rf"(?:{pattern})$", re.IGNORECASE), build) for pattern, build in _PHRASINGS]


@functools.lru_cache(maxsize=65536)
def recognise(criterion: str) -> Optional[Check]:
    """The check a criterion's wording states exactly, or None (the judge decides it).

    Recognised, case-insensitive, after an optional subject ("The response", "Response", "The
    poem", ...) and "should"/"must": counts of words, sentences, lines, paragraphs and list items
    in digits or words ("Is under 150 words", "Uses at most five sentences", "Has exactly 3 bullet
    points", "Is 100 words or fewer", "Exceeds 12 lines", "Is a single paragraph"); quoted words
    used, avoided or opening the response ("Uses the word 'tilt'", "Avoids the word
    \\"unfortunately\\"", "Begins with the words 'Dear Diary'"); "Uses bullet points", "Uses a
    numbered list", "Uses a list", "Uses no list", "Presents the steps as a numbered list"; "Has a
    title", "Opens with a greeting", "Ends with a sign-off and a name", "Asks the reader a question",
    "Includes a question", "Ends with a question to the reader", "Contains no digits". Anything more or less than one of these phrasings gives None.
    """
    text = re.sub(r"\s+", " ", criterion.strip()).rstrip(".").strip()
    text = text.replace("\u2019s ", "'s ")
    for pattern, build in _RECOGNISERS:
        match = pattern.match(text)
        if match:
            return build(match)
    return None


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def rubric_echo(text: str, criteria: Sequence[str], n: int = 4) -> float:
    """The share of the words of ``text`` that lie in a word n-gram (lower-cased, punctuation dropped)
    found in one of ``criteria``: 0 for a response in its own words, 1 for a pasted rubric. A policy
    that learns to echo its rubric raises this while the task itself is not done better (the hack
    that pays with a judge which reads a criterion's own words as evidence for it)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return 0.0
    grams = set()
    for criterion in criteria:
        own = _WORD.findall(criterion.lower())
        grams.update(tuple(own[k : k + n]) for k in range(len(own) - n + 1))
    copied = [False] * len(words)
    for k in range(len(words) - n + 1):
        if tuple(words[k : k + n]) in grams:
            copied[k : k + n] = [True] * n
    return sum(copied) / len(words)
