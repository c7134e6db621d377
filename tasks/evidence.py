"""The evidence corpus: passages that meet (or commit) each rubric criterion, for training and testing judges.

A corpus file sits beside its task set (``<task set>/evidence/*.jsonl``), one JSON object per task::

    {"task": "expl-001",
     "criteria": [
       {"criterion": "<the task's criterion, verbatim>", "kind": "content",
        "evidence": ["Interest is paid on the interest you already earned ...", "...", "..."],
        "paraphrases": ["Says compound interest also accrues on past interest", "..."]},
       {"criterion": "The response is under 150 words", "kind": "structure",
        "check": {"type": "words", "lt": 150}, "paraphrases": ["..."]},
       {"criterion": "Describes compound interest as ...", "kind": "pitfall",
        "evidence": ["Compound interest is simply interest on the deposit you made ..."], "paraphrases": ["..."]},
       {"criterion": "Uses a warm tone", "kind": "untestable", "why": "tone is not a passage"}],
     "distractors": ["On-topic sentences that meet none of the criteria", "..."],
     "layouts": ["paragraph", "numbered", "bullets", "lines"]}

Criteria are listed in the task's order, one entry each. Kinds:

- ``content``: met when one of its ``evidence`` passages is in the response (at least 3 passages of
  one or two sentences, worded unlike the criterion). ``place: "first"`` or ``"last"`` means a
  passage only counts there (e.g. "starts by directly answering the question").
- ``pitfall``: a negative-weight criterion; its ``evidence`` passages commit the pitfall.
- ``structure``: decided from the response text by ``check`` (below), so the composer can build
  both verdicts by construction; ``evidence`` is then optional material the composer places
  (titles, greetings, sign-offs, a question to the reader, passages holding a required word).
- ``untestable``: neither passages nor construction decide it (tone, say); ``why`` says so. Such
  criteria get no judge examples.

An evidence passage is a string, or ``{"text": ..., "also": [k, ...]}`` when it also meets the
task's criteria k (0-based indices). ``paraphrases`` reword the criterion with the same meaning:
judge training shows them in place of the original, so that the judge learns meaning, not wording.

Checks (``check``), decided on the final response text; ``"negate": true`` inverts any of them:

- ``{"type": "words" | "sentences" | "lines" | "paragraphs" | "items", OP: N}`` with OP one of
  ``lt``, ``le``, ``gt``, ``ge``, ``eq``: a count compared with N (items are list lines).
- ``{"type": "numbered_list" | "bullet_list" | "list"}``: at least two such list lines.
- ``{"type": "title" | "greeting" | "sign_off" | "question" | "digits"}``.
- ``{"type": "contains" | "starts_with", "text": "..."}``: a word or phrase (case-insensitive,
  whole words) anywhere, or at the very start.

``load_corpus`` checks all of this and reports a bad line as ``file:line: what is wrong``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .types import Task, TaskSet

KINDS = ("content", "pitfall", "structure", "untestable")
LAYOUTS = ("paragraph", "paragraphs", "lines", "numbered", "bullets")
PLACES = ("any", "first", "last")
COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
}
MIN_EVIDENCE = 3
MIN_DISTRACTORS = 6
MAX_PASSAGE_WORDS = 60


class CorpusFormatError(ValueError):
    """An evidence file that cannot be read; the message starts with ``file:line:``."""


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
            raise CorpusFormatError(f"{where}: check must be an object with a 'type', got {spec!r}")
        kind, negate = spec["type"], spec.get("negate", False)
        if kind not in CHECK_TYPES:
            raise CorpusFormatError(f"{where}: unknown check type {kind!r}; known: {', '.join(CHECK_TYPES)}")
        if not isinstance(negate, bool):
            raise CorpusFormatError(f"{where}: check 'negate' must be true or false, got {negate!r}")
        allowed = {"type", "negate"}
        if kind in _COUNTS:
            ops = [op for op in COMPARISONS if op in spec]
            if len(ops) != 1:
                raise CorpusFormatError(f"{where}: a {kind!r} check needs exactly one of {list(COMPARISONS)}")
            value = spec[ops[0]]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CorpusFormatError(f"{where}: {kind} {ops[0]} must be a whole number >= 0, got {value!r}")
            allowed.add(ops[0])
            check = cls(kind, ops[0], value, negate=negate)
        elif kind in _PHRASES:
            text = spec.get("text")
            if not isinstance(text, str) or not text.strip():
                raise CorpusFormatError(f"{where}: a {kind!r} check needs a non-empty 'text'")
            allowed.add("text")
            check = cls(kind, text=text, negate=negate)
        else:
            check = cls(kind, negate=negate)
        extra = sorted(set(spec) - allowed)
        if extra:
            raise CorpusFormatError(f"{where}: check {kind!r} does not take {extra}")
        return check

    def __call__(self, text: str) -> bool:
        if self.type in _COUNTS:
            result = COMPARISONS[self.op](_COUNTS[self.type](text), self.value)
        elif self.type in _PHRASES:
            result = _PHRASES[self.type](text, self.text)
        else:
            result = _FLAGS[self.type](text)
        return result != self.negate


# ---- the corpus -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Passage:
    """An evidence passage and the criteria (indices in its task) it meets."""

    text: str
    meets: tuple[int, ...]


@dataclass(frozen=True)
class CriterionEvidence:
    """What the corpus holds for one criterion of a task."""

    index: int
    criterion: str
    weight: float
    kind: str
    evidence: tuple[Passage, ...] = ()
    check: Optional[Check] = None
    place: str = "any"
    paraphrases: tuple[str, ...] = ()
    why: str = ""

    @property
    def judgeable(self) -> bool:
        return self.kind != "untestable"


@dataclass(frozen=True)
class TaskEvidence:
    """The corpus entry of one task: evidence per criterion, distractors and allowed layouts."""

    task: Task
    criteria: tuple[CriterionEvidence, ...]
    distractors: tuple[str, ...]
    layouts: tuple[str, ...] = LAYOUTS
    where: str = ""


@dataclass
class Corpus:
    """Evidence for the tasks of a task set, by task id."""

    tasks: TaskSet
    entries: dict[str, TaskEvidence] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries.values())

    def split(self, name: str) -> list[TaskEvidence]:
        """The entries whose task is in split ``name`` ("all" for every entry)."""
        return [e for e in self.entries.values() if name == "all" or e.task.split == name]

    def counts(self) -> dict[str, int]:
        """Criteria per kind, and passages and distractors in all."""
        out = {kind: 0 for kind in KINDS}
        for entry in self.entries.values():
            for c in entry.criteria:
                out[c.kind] += 1
        out["passages"] = sum(len(c.evidence) for e in self.entries.values() for c in e.criteria)
        out["distractors"] = sum(len(e.distractors) for e in self.entries.values())
        return out


def _texts(value: Any, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CorpusFormatError(f"{where}: {what} must be a list of non-empty strings")
    return [v.strip() for v in value]


def _passage(item: Any, index: int, n_criteria: int, where: str) -> Passage:
    if isinstance(item, str):
        text, also = item, []
    elif isinstance(item, dict) and isinstance(item.get("text"), str):
        text, also = item["text"], item.get("also", [])
        if not isinstance(also, list) or not all(
            isinstance(k, int) and not isinstance(k, bool) and 0 <= k < n_criteria for k in also
        ):
            raise CorpusFormatError(f"{where}: 'also' must list criterion indices 0..{n_criteria - 1}, got {also!r}")
    else:
        raise CorpusFormatError(f"{where}: a passage must be a string or {{'text': ..., 'also': [...]}}, got {item!r}")
    if not text.strip():
        raise CorpusFormatError(f"{where}: empty passage")
    if count_words(text) > MAX_PASSAGE_WORDS and "\n" not in text:
        raise CorpusFormatError(
            f"{where}: passage of {count_words(text)} words (at most {MAX_PASSAGE_WORDS}): {text[:60]!r}..."
        )
    return Passage(text.strip(), tuple(sorted({index, *also})))


def parse_entry(row: dict, tasks: TaskSet, where: str) -> TaskEvidence:
    """One corpus line checked against its task; CorpusFormatError names ``where``."""
    task_id = row.get("task")
    if not isinstance(task_id, str) or task_id not in tasks:
        raise CorpusFormatError(f"{where}: 'task' must name a task of {tasks.name}, got {task_id!r}")
    task = tasks.get(task_id)
    items = row.get("criteria")
    if not isinstance(items, list) or len(items) != len(task.criteria):
        raise CorpusFormatError(
            f"{where}: 'criteria' must list the {len(task.criteria)} criteria of {task_id} "
            f"in order, got {len(items) if isinstance(items, list) else items!r}"
        )
    criteria = []
    for k, (item, criterion) in enumerate(zip(items, task.criteria)):
        at = f"{where}: criterion {k}"
        if not isinstance(item, dict):
            raise CorpusFormatError(f"{at}: must be an object")
        if item.get("criterion") != criterion.criterion:
            raise CorpusFormatError(f"{at}: text {item.get('criterion')!r} is not the task's {criterion.criterion!r}")
        kind = item.get("kind")
        if kind not in KINDS:
            raise CorpusFormatError(f"{at}: kind must be one of {KINDS}, got {kind!r}")
        if kind == "pitfall" and criterion.weight >= 0:
            raise CorpusFormatError(f"{at}: kind 'pitfall' needs a negative weight (this one is {criterion.weight:g})")
        evidence = tuple(_passage(p, k, len(task.criteria), at) for p in item.get("evidence", []))
        if kind in ("content", "pitfall") and len(evidence) < MIN_EVIDENCE:
            raise CorpusFormatError(
                f"{at}: a {kind} criterion needs at least {MIN_EVIDENCE} evidence passages, got {len(evidence)}"
            )
        check = Check.parse(item["check"], at) if "check" in item else None
        if kind == "structure" and check is None:
            raise CorpusFormatError(f"{at}: a structure criterion needs a 'check'")
        place = item.get("place", "any")
        if place not in PLACES:
            raise CorpusFormatError(f"{at}: place must be one of {PLACES}, got {place!r}")
        paraphrases = tuple(_texts(item.get("paraphrases", []), at, "paraphrases"))
        why = item.get("why", "")
        if kind == "untestable" and not (isinstance(why, str) and why.strip()):
            raise CorpusFormatError(f"{at}: an untestable criterion needs a 'why'")
        unknown = sorted(set(item) - {"criterion", "kind", "evidence", "check", "place", "paraphrases", "why"})
        if unknown:
            raise CorpusFormatError(f"{at}: unknown field(s) {unknown}")
        criteria.append(
            CriterionEvidence(k, criterion.criterion, criterion.weight, kind, evidence, check, place, paraphrases, why)
        )
    distractors = tuple(_texts(row.get("distractors"), where, "'distractors'"))
    if len(distractors) < MIN_DISTRACTORS:
        raise CorpusFormatError(
            f"{where}: {task_id} needs at least {MIN_DISTRACTORS} distractors, got {len(distractors)}"
        )
    layouts = row.get("layouts", list(LAYOUTS))
    if not isinstance(layouts, list) or not layouts or any(v not in LAYOUTS for v in layouts):
        raise CorpusFormatError(f"{where}: layouts must be a non-empty list of {LAYOUTS}, got {layouts!r}")
    unknown = sorted(set(row) - {"task", "criteria", "distractors", "layouts"})
    if unknown:
        raise CorpusFormatError(f"{where}: unknown field(s) {unknown}")
    return TaskEvidence(task, tuple(criteria), distractors, tuple(layouts), where)


def corpus_files(source: str | Path, tasks: TaskSet) -> list[Path]:
    """The evidence files of a task set: ``<folder>/evidence/*.jsonl`` beside the task files,
    or the file or folder ``source`` names."""
    path = Path(source)
    if path.is_dir() and (path / "evidence").is_dir():
        path = path / "evidence"
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no evidence files at {source} (expected *.jsonl)")
    return files


def load_corpus(source: str | Path, tasks: TaskSet, require_all: bool = False) -> Corpus:
    """Read and check an evidence corpus for ``tasks``.

    Args:
        source: an evidence file, a folder of them, or a task folder holding ``evidence/``.
        tasks: the task set the entries refer to.
        require_all: every task of ``tasks`` must have an entry.

    Raises:
        CorpusFormatError: ``file:line: what is wrong`` for bad JSON, an unknown task, criteria
            that do not match the task, too few passages or distractors, a bad check, or a task
            given twice.
    """
    corpus = Corpus(tasks)
    for file in corpus_files(source, tasks):
        with open(file, encoding="utf-8-sig") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file}:{line_no}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise CorpusFormatError(f"{where}: bad JSON ({err.msg} at column {err.colno})") from None
                if not isinstance(row, dict):
                    raise CorpusFormatError(f"{where}: each line must be a JSON object")
                entry = parse_entry(row, tasks, where)
                if entry.task.task_id in corpus.entries:
                    raise CorpusFormatError(
                        f"{where}: task {entry.task.task_id!r} already has an entry "
                        f"(at {corpus.entries[entry.task.task_id].where})"
                    )
                corpus.entries[entry.task.task_id] = entry
    if require_all:
        missing = [t.task_id for t in tasks if t.task_id not in corpus.entries]
        if missing:
            raise CorpusFormatError(f"{source}: no evidence for {len(missing)} task(s): {missing[:10]}")
    return corpus


def validate_cli(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tasks.evidence TASKS [EVIDENCE]``: load and check a corpus, print its counts."""
    import sys

    from .loaders import load_taskset

    args = list(sys.argv[1:] if argv is None else argv)
    tasks = load_taskset(args[0] if args else "openended-mini")
    source = args[1] if len(args) > 1 else Path(tasks_folder(args[0] if args else "openended-mini"))
    corpus = load_corpus(source, tasks)
    print(json.dumps({"entries": len(corpus), **corpus.counts()}))
    return 0


def tasks_folder(name: str) -> Path:
    from .loaders import BUNDLED

    return BUNDLED.get(name, Path(name))


if __name__ == "__main__":
    raise SystemExit(validate_cli())
