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

Checks (``check``) are those of ``tasks.checks``.

``load_corpus`` checks all of this and reports a bad line as ``file:line: what is wrong``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tasks.checks import Check, CheckFormatError, count_words
from tasks.loaders import BUNDLED, TaskFormatError, load_taskset, read_rows
from tasks.types import Task, TaskSet

KINDS = ("content", "pitfall", "structure", "untestable")
LAYOUTS = ("paragraph", "paragraphs", "lines", "numbered", "bullets")
PLACES = ("any", "first", "last")
MIN_EVIDENCE = 3
MIN_DISTRACTORS = 6
MAX_PASSAGE_WORDS = 60


class CorpusFormatError(ValueError):
    """An evidence file that cannot be read; the message starts with ``file:line:``."""


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
        try:
            check = Check.parse(item["check"], at) if "check" in item else None
        except CheckFormatError as err:
            raise CorpusFormatError(str(err)) from None
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


def _rows(file: Path):
    """The JSON objects of an evidence file, as ``tasks.loaders.read_rows`` reads them."""
    try:
        yield from read_rows(file)
    except TaskFormatError as err:
        raise CorpusFormatError(str(err)) from None


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
        for where, row in _rows(file):
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


def tasks_folder(name: str) -> Path:
    """The folder of a bundled task set name, or ``name`` itself as a path."""
    return BUNDLED.get(name, Path(name))


def corpus_of(name: str) -> Corpus:
    """The evidence corpus of a task set name or folder (its ``evidence/`` folder)."""
    return load_corpus(tasks_folder(name), load_taskset(name))


def corpus_hash(names: Sequence[str]) -> str:
    """sha256 of the task and evidence files of the named task sets (what a judge was trained on)."""
    digest = hashlib.sha256()
    for name in names:
        folder = tasks_folder(name)
        for file in sorted(folder.glob("*.jsonl")) + sorted((folder / "evidence").glob("*.jsonl")):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def validate_cli(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m g2r_judge.corpus TASKS [EVIDENCE]``: load and check a corpus, print its counts."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    name = args[0] if args else "openended-mini"
    tasks = load_taskset(name)
    corpus = load_corpus(args[1] if len(args) > 1 else tasks_folder(name), tasks)
    print(json.dumps({"entries": len(corpus), **corpus.counts()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(validate_cli())
