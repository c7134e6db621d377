"""The composer: labelled judge examples built from the evidence corpus, seeded and deterministic.

A composed response is a random subset of a task's evidence passages and distractors in random
order, laid out as one paragraph, several paragraphs, one passage per line, a numbered list or a
bullet list, with the task's structure material (a title, a greeting, a question to the reader, a
sign-off, a required opening) added or left out at random. Every judgeable criterion of the task
then has an exact verdict:

- content and pitfall criteria are met iff one of the passages that meets them is in the response
  (at the first or last place of the body, for criteria with ``place``);
- structure criteria are decided by their check on the final text.

Each criterion's evidence is recorded as character spans of the response (the passages that meet
it, or the material that was placed for it). Mismatched negatives add criteria of other tasks of
the same domain, unmet by construction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Optional

from tasks.checks import Check, count_sentences, count_words, list_lines

from .cases import JudgedCase
from .corpus import Corpus, CriterionEvidence, TaskEvidence

MATERIAL_AT_START = ("title", "greeting", "starts_with")
MATERIAL_AT_END = ("sign_off", "question")
NEGATIVE_KINDS = ("in-task", "mismatched")


def half_of(items: Sequence, half: Optional[int]) -> list:
    """Items of one half (index parity 0 or 1); all items for None, or when the half would be empty."""
    if half is None:
        return list(items)
    chosen = [item for i, item in enumerate(items) if i % 2 == half]
    return chosen or list(items)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}


def _similar(a: str, b: str, threshold: float = 0.5) -> bool:
    wa, wb = _words(a), _words(b)
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= threshold


# Generic structure criteria, phrased many ways and decided by a check on the composed text. Counts
# are asked about near the response's own count, above or below it, so that about half are met:
# a judge trained on a task's fixed "under 150 words" (met by most short responses) would learn to
# say True to any length criterion instead of looking at the length.
GENERIC_COUNTS = {
    ("words", "lt"): [
        "The response is under {n} words",
        "Is under {n} words long",
        "Uses fewer than {n} words",
        "Keeps the answer below {n} words",
        "The answer is shorter than {n} words",
    ],
    ("words", "gt"): ["The response is longer than {n} words", "Is more than {n} words long", "Exceeds {n} words"],
    ("sentences", "eq"): [
        "Is exactly {n} sentences long",
        "Consists of exactly {n} sentences",
        "The response has {n} sentences, no more and no fewer",
    ],
    ("sentences", "le"): [
        "Uses at most {n} sentences",
        "Has no more than {n} sentences",
        "Is {n} sentences or shorter",
    ],
    ("items", "eq"): [
        "Lists exactly {n} items",
        "Contains exactly {n} list items",
        "Has exactly {n} points in its list",
    ],
    ("lines", "le"): ["Is no longer than {n} lines", "Fits in {n} lines or fewer"],
}
GENERIC_FLAGS = {
    "numbered_list": [
        "Uses a numbered list",
        "Presents its points as a numbered list",
        "Numbers its steps 1, 2, 3",
        "Is formatted as a numbered list",
    ],
    "bullet_list": ["Uses bullet points", "Presents the points as a bulleted list", "Is formatted as a bullet list"],
    "list": ["Presents its points as a list, bulleted or numbered", "Uses a list"],
    "title": ["Has a title", "Starts with a title line", "Gives the piece a title"],
    "greeting": ["Opens with a greeting", "Begins by greeting someone, such as 'Dear ...' or 'Hi ...'"],
    "sign_off": ["Ends with a sign-off and a name", "Closes with a sign-off line and the writer's name"],
    "question": ["Asks the reader a question", "Contains at least one question", "Includes a question"],
    "digits": ["Contains a number written in digits", "Uses digits for at least one number", "Includes a numeral"],
}
GENERIC_NEGATED = {
    "digits": ["Contains no digits", "Writes no numbers in digits"],
    "list": ["Uses no list", "Is written as prose, without a list"],
}
GENERIC_MATERIAL = {  # added to any response now and then, so the generic flags are met on every kind of task
    "title": ["A Few Notes", "Quick Guide", "My Answer", "In Short", "The Basics", "Here Is What I Know"],
    "greeting": ["Dear Sam,", "Hi Priya,", "Hello Mr. Okafor,", "Dear friend,", "Hi there,"],
    "sign_off": ["Best wishes,\nAlex", "Thanks,\nJordan Lee", "Kind regards,\nMaria", "Love,\nTom", "Cheers,\nKim"],
}
GENERIC_WORDS = ["Uses the word '{w}'", 'Includes the word "{w}"', "Contains the word '{w}'"]
GENERIC_NO_WORDS = ["Avoids the word '{w}'", "Does not use the word '{w}'"]
_COUNTERS = {
    "words": count_words,
    "sentences": count_sentences,
    "items": list_lines,
    "lines": lambda t: len([line for line in t.splitlines() if line.strip()]),
}


def generic_structure(text: str, other_words: list[str], rng: random.Random) -> tuple[str, Check]:
    """One generic structure criterion for ``text`` and the check that decides it."""
    kind = rng.choices(["count", "flag", "negated", "word"], weights=[5, 4, 1, 2])[0]
    if kind == "count":
        (name, op), phrasings = rng.choice(list(GENERIC_COUNTS.items()))
        actual = _COUNTERS[name](text)
        if name == "words":
            n = max(10, int(round(actual * rng.uniform(0.6, 1.5) / 10)) * 10)
        else:
            n = max(1, actual + rng.choice([-2, -1, 0, 0, 1, 2]))
        return rng.choice(phrasings).format(n=n), Check(name, op, n)
    if kind == "flag":
        name, phrasings = rng.choice(list(GENERIC_FLAGS.items()))
        return rng.choice(phrasings), Check(name)
    if kind == "negated":
        name, phrasings = rng.choice(list(GENERIC_NEGATED.items()))
        return rng.choice(phrasings), Check(name, negate=True)
    present = [w for w in re.findall(r"[A-Za-z]{5,}", text)]
    word = (
        rng.choice(present)
        if present and (rng.random() < 0.5 or not other_words)
        else rng.choice(other_words or ["zebra"])
    )
    negate = rng.random() < 0.3
    return rng.choice(GENERIC_NO_WORDS if negate else GENERIC_WORDS).format(w=word.lower()), Check(
        "contains", text=word.lower(), negate=negate
    )


class Composer:
    """Builds labelled responses for the tasks of an evidence corpus.

    Args:
        corpus: the evidence corpus.
        seed: the seed; the same seed gives the same examples.
        passage_half: 0 or 1 to use only one half of every passage list (to train two judges on disjoint
            passages), None for all.
        paraphrase_rate: share of examples that show a paraphrase instead of the criterion.
        mismatched_per_response: criteria of other tasks (same domain) added as unmet examples.
        wordings: examples per criterion and response, each in a different wording (the criterion
            and its paraphrases; fewer when it has fewer). More than 1 makes judge training cheaper
            per example: the response is read once for all of them.
        generic_per_response: generic structure criteria (``generic_structure``) added to each
            response, decided by their checks.
    """

    def __init__(
        self,
        corpus: Corpus,
        seed: int = 0,
        passage_half: Optional[int] = None,
        paraphrase_rate: float = 0.5,
        mismatched_per_response: int = 2,
        wordings: int = 1,
        generic_per_response: int = 0,
    ) -> None:
        if wordings < 1:
            raise ValueError(f"wordings must be >= 1, got {wordings}")
        self.corpus = corpus
        self.rng = random.Random(seed)
        self.passage_half = passage_half
        self.paraphrase_rate = paraphrase_rate
        self.mismatched_per_response = mismatched_per_response
        self.wordings = wordings
        self.generic_per_response = generic_per_response
        self._counter = 0
        by_domain: dict[str, list[tuple[TaskEvidence, CriterionEvidence]]] = {}
        for entry in corpus:
            for c in entry.criteria:
                if c.kind in ("content", "pitfall"):
                    by_domain.setdefault(entry.task.domain, []).append((entry, c))
        self._foreign = by_domain

    # ------------------------------------------------------------------------------------------
    def examples(self, entries: Iterable[TaskEvidence], responses_per_task: int) -> list[JudgedCase]:
        """``responses_per_task`` composed responses per entry, every criterion judged on each."""
        out = []
        for entry in entries:
            for _ in range(responses_per_task):
                out.extend(self.compose(entry))
        return out

    def compose(self, entry: TaskEvidence) -> list[JudgedCase]:
        """One composed response to ``entry``'s task and an example per judgeable criterion."""
        rng = self.rng
        self._counter += 1
        group = f"{entry.task.task_id}#{self._counter}"
        body: list[tuple[str, tuple[int, ...]]] = []  # (text, criteria it meets)
        for c in entry.criteria:
            if c.kind in ("content", "pitfall") and rng.random() < (0.35 if c.kind == "pitfall" else 0.5):
                passage = rng.choice(half_of(c.evidence, self.passage_half))
                body.append((passage.text, passage.meets))
        material = [c for c in entry.criteria if c.kind == "structure" and c.evidence]
        placed: dict[int, str] = {}
        for c in material:
            if rng.random() < 0.5:
                placed[c.index] = rng.choice(half_of(c.evidence, self.passage_half)).text
        inline = [
            (text, (k,))
            for k, text in placed.items()
            if entry.criteria[k].check.type not in MATERIAL_AT_START + MATERIAL_AT_END
        ]
        body.extend(inline)
        size = rng.choices(range(1, 13), weights=[4, 8, 9, 9, 8, 6, 5, 4, 3, 2, 2, 2])[0]
        distractors = half_of(entry.distractors, self.passage_half)
        extra = max(0, size - len(body))
        body.extend((text, ()) for text in rng.sample(distractors, min(extra, len(distractors))))
        rng.shuffle(body)
        for c in entry.criteria:  # criteria about the first or last place: usually put a passage there
            if c.place != "any" and rng.random() < 0.6:
                at = [i for i, (_, meets) in enumerate(body) if c.index in meets]
                if at:
                    item = body.pop(at[0])
                    body.insert(0 if c.place == "first" else len(body), item)

        text, spans = self._layout(entry, body, placed)
        if self.generic_per_response:
            text, spans = self._generic_material(text, spans)
        cases = []
        for c in entry.criteria:
            if not c.judgeable:
                continue
            if c.kind == "structure":
                label = c.check(text)
                span = spans.get(("material", c.index))
                evidence = (span,) if label and span else ()
            else:
                hits = [i for i, (_, meets) in enumerate(body) if c.index in meets]
                if c.place == "first":
                    hits = [i for i in hits if i == 0]
                elif c.place == "last":
                    hits = [i for i in hits if i == len(body) - 1]
                label = bool(hits)
                evidence = tuple(spans[("body", i)] for i in hits)
            for wording in self._wordings(c):
                cases.append(
                    JudgedCase(
                        entry.task, text, wording, label, c.kind, "" if label else "in-task", evidence, group, c.weight
                    )
                )
        cases.extend(self._mismatched(entry, text, group))
        unused = [w for d in entry.distractors for w in re.findall(r"[A-Za-z]{5,}", d) if w.lower() not in text.lower()]
        for _ in range(self.generic_per_response):
            criterion, check = generic_structure(text, unused, rng)
            label = check(text)
            cases.append(
                JudgedCase(entry.task, text, criterion, label, "structure", "" if label else "generic", (), group, 1.0)
            )
        return cases

    # ------------------------------------------------------------------------------------------
    def _layout(
        self, entry: TaskEvidence, body: list[tuple[str, tuple[int, ...]]], placed: dict[int, str]
    ) -> tuple[str, dict[tuple[str, int], tuple[int, int]]]:
        """The response text and the character span of every body item and placed material."""
        rng = self.rng
        layout = rng.choice(entry.layouts)
        if layout in ("numbered", "bullets") and len(body) < 2:
            layout = "paragraph"
        marker = rng.choice(["- ", "* ", "\u2022 "])
        head = [(k, placed[k]) for k in placed if entry.criteria[k].check.type in MATERIAL_AT_START]
        tail = [(k, placed[k]) for k in placed if entry.criteria[k].check.type in MATERIAL_AT_END]
        order = {"starts_with": 0, "greeting": 1, "title": 2}
        head.sort(key=lambda item: order[entry.criteria[item[0]].check.type])
        tail.sort(key=lambda item: entry.criteria[item[0]].check.type == "sign_off")  # the sign-off last

        parts: list[tuple[str, Optional[tuple[str, int]]]] = []  # (text, span key)
        for k, material in head:
            kind = entry.criteria[k].check.type
            separator = " " if kind == "starts_with" else "\n\n"
            parts += [(material, ("material", k)), (separator, None)]
        breaks = (
            sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 2))))
            if layout == "paragraphs" and len(body) > 1
            else []
        )
        for i, (passage, _) in enumerate(body):
            if layout == "numbered":
                parts.append((f"{i + 1}. ", None))
            elif layout == "bullets":
                parts.append((marker, None))
            parts.append((passage, ("body", i)))
            if i < len(body) - 1:
                joiner = {"paragraph": " ", "lines": "\n", "numbered": "\n", "bullets": "\n"}.get(layout, " ")
                parts.append(("\n\n" if i + 1 in breaks else joiner, None))
        for k, material in tail:
            separator = "\n\n" if entry.criteria[k].check.type == "sign_off" or layout != "paragraph" else " "
            parts += [(separator, None), (material, ("material", k))]

        text, spans, offset = "", {}, 0
        for piece, key in parts:
            if key is not None:
                spans[key] = (offset, offset + len(piece))
            text += piece
            offset += len(piece)
        return text, spans

    def _generic_material(self, text: str, spans: dict) -> tuple[str, dict]:
        """Now and then a title or greeting above and a sign-off below the response (spans shifted)."""
        rng = self.rng
        for kind in ("greeting", "title"):
            if rng.random() < 0.12 and not Check(kind)(text):
                head = rng.choice(GENERIC_MATERIAL[kind]) + "\n\n"
                text = head + text
                spans = {key: (a + len(head), b + len(head)) for key, (a, b) in spans.items()}
        if rng.random() < 0.12 and not Check("sign_off")(text):
            text = text + "\n\n" + rng.choice(GENERIC_MATERIAL["sign_off"])
        return text, spans

    def _wordings(self, c: CriterionEvidence) -> list[str]:
        """``wordings`` distinct wordings; the first is a paraphrase with probability paraphrase_rate."""
        paraphrases = list(c.paraphrases)
        self.rng.shuffle(paraphrases)
        first_original = not paraphrases or self.rng.random() >= self.paraphrase_rate
        ordered = [c.criterion] + paraphrases if first_original else paraphrases[:1] + [c.criterion] + paraphrases[1:]
        return ordered[: self.wordings]

    def _mismatched(self, entry: TaskEvidence, text: str, group: str) -> list[JudgedCase]:
        """Criteria of other tasks of the domain, unmet here: skipped when close in wording to one
        of this task's criteria (a generic "see a doctor" criterion may well be met)."""
        pool = [
            (e, c)
            for e, c in self._foreign.get(entry.task.domain, [])
            if e.task.task_id != entry.task.task_id
            and not any(_similar(c.criterion, own.criterion) for own in entry.criteria)
        ]
        cases = []
        for _other, c in self.rng.sample(pool, min(self.mismatched_per_response, len(pool))):
            cases.append(
                JudgedCase(entry.task, text, self._wordings(c)[0], False, c.kind, "mismatched", (), group, c.weight)
            )
        return cases
