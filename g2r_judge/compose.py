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

Hard negatives, all off by default (judge training turns them on; ``JudgeTrainConfig``):

- near misses (``near_miss_rate``): for an unmet content criterion, a passage on the same topic without
  its key fact: a distractor that shares the criterion's content words, or a sentence that only names
  them ("Paper towels and the steak come into it too, but that is another story."); for an unmet
  pitfall, a passage of another criterion of the task in close words (the right version of the
  mistake) where the corpus has one. Labelled ``negative="near-miss"``.
- claims (``claims_per_response``): a sentence that restates an unmet criterion or says the response
  meets it ("This answer uses a numbered list.", "It gives a concrete example.", the criterion's own
  words) without meeting it; labelled ``negative="claim"``. A claimed generic structure criterion is
  asked too. Structure labels stay decided by their checks on the final text.

Varied responses (``varied``): more layouts (markdown headers, a table, bold lead-ins), connective
sentences and lead-ins between passages, passages merged into one item, openers and closers, and
now and then a typo outside the evidence; ``max_words`` caps the response. Every verdict stays exact:
passages are placed verbatim, content verdicts follow from the body items, structure verdicts from
the checks on the final text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Optional

from tasks.checks import Check, count_sentences, count_words, list_lines

from .cases import JudgedCase
from .corpus import LAYOUTS, Corpus, CriterionEvidence, TaskEvidence

MATERIAL_AT_START = ("title", "greeting", "starts_with")
MATERIAL_AT_END = ("sign_off", "question")
NEGATIVE_KINDS = ("in-task", "mismatched", "near-miss", "claim", "generic")
"""Kinds of unmet criteria: another criterion of the task, a criterion of another task, a near miss,
a claim, a generic structure criterion."""
HARD_NEGATIVES = ("in-task", "near-miss", "claim")
LIST_CHECKS = ("numbered_list", "bullet_list", "list", "items")
VARIED_LAYOUTS = ("headers", "table", "bold")
"""Layouts of ``varied`` responses beside the corpus's own; "table" only for tasks without a list criterion
(whether a table is a list is a matter of opinion)."""


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


_FUNCTION_WORDS = set(
    "that this with from into about than then them they their there these those what when which while "
    "your yours before after under over also only just more most less least some such each every other "
    "says mentions explains states notes suggests recommends advises describes gives includes uses "
    "response answer should would could being been have does doing make makes like very well".split()
)


def content_words(text: str) -> list[str]:
    """The criterion's words that carry its topic (longer than 3 letters, not function or rubric words), in order."""
    seen, out = set(), []
    for word in re.findall(r"[^\W\d_][\w-]*", text):
        low = word.lower()
        if len(low) > 3 and low not in _FUNCTION_WORDS and low not in seen:
            seen.add(low)
            out.append(low)
    return out


_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """0..999 in words: 7 -> "seven", 45 -> "forty-five", 150 -> "one hundred and fifty"."""
    if not 0 <= n < 1000:
        raise ValueError(f"number_words takes 0..999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens - 2] + ("" if not ones else "-" + _ONES[ones])
    hundreds, rest = divmod(n, 100)
    return _ONES[hundreds] + " hundred" + ("" if not rest else " and " + number_words(rest))


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
        "Stays under {n} words",
        "Comes in under {n} words",
    ],
    ("words", "le"): [
        "Is at most {n} words long",
        "Uses no more than {n} words",
        "Keeps to {n} words or fewer",
        "Has a maximum of {n} words",
        "Does not go over {n} words",
    ],
    ("words", "gt"): [
        "The response is longer than {n} words",
        "Is more than {n} words long",
        "Exceeds {n} words",
        "Runs to over {n} words",
    ],
    ("sentences", "eq"): [
        "Is exactly {n} sentences long",
        "Consists of exactly {n} sentences",
        "The response has {n} sentences, no more and no fewer",
        "Is written in precisely {n} sentences",
    ],
    ("sentences", "le"): [
        "Uses at most {n} sentences",
        "Has no more than {n} sentences",
        "Is {n} sentences or shorter",
        "Keeps to {n} sentences at most",
    ],
    ("sentences", "lt"): ["Is under {n} sentences", "Has fewer than {n} sentences"],
    ("items", "eq"): [
        "Lists exactly {n} items",
        "Contains exactly {n} list items",
        "Has exactly {n} points in its list",
        "Is a list of {n} items",
        "Enumerates exactly {n} points",
        "Gives {n} list entries, no more and no fewer",
    ],
    ("items", "le"): [
        "Lists at most {n} items",
        "Has no more than {n} list items",
        "Keeps its list to {n} points or fewer",
    ],
    ("lines", "le"): ["Is no longer than {n} lines", "Fits in {n} lines or fewer", "Takes up at most {n} lines"],
}
GENERIC_FLAGS = {
    "numbered_list": [
        "Uses a numbered list",
        "Presents its points as a numbered list",
        "Numbers its steps 1, 2, 3",
        "Is formatted as a numbered list",
        "Enumerates its points with numbers",
        "Gives numbered steps",
    ],
    "bullet_list": [
        "Uses bullet points",
        "Presents the points as a bulleted list",
        "Is formatted as a bullet list",
        "Lists its points with bullets",
        "Has bullet points",
    ],
    "list": [
        "Presents its points as a list, bulleted or numbered",
        "Uses a bulleted or numbered list",
        "Uses bullet points or a numbered list",
        "Enumerates its points as list items",
        "Breaks the answer into a list",
    ],
    "title": ["Has a title", "Starts with a title line", "Gives the piece a title", "Opens with a heading"],
    "greeting": [
        "Opens with a greeting",
        "Begins by greeting someone, such as 'Dear ...' or 'Hi ...'",
        "Starts with a salutation",
    ],
    "sign_off": [
        "Ends with a sign-off and a name",
        "Closes with a sign-off line and the writer's name",
        "Is signed off with a name at the end",
    ],
    "question": [
        "Asks the reader a question",
        "Contains at least one question",
        "Includes a question",
        "Poses a question",
    ],
    "digits": [
        "Contains a number written in digits",
        "Uses digits for at least one number",
        "Includes a numeral",
        "Gives at least one figure in digits",
    ],
}
GENERIC_NEGATED = {
    "digits": ["Contains no digits", "Writes no numbers in digits", "Spells out every number instead of using digits"],
    "list": [
        "Uses no list",
        "Is written as prose, without a list",
        "Avoids bullet points and numbered lists",
        "Does not break the answer into list items",
    ],
    "question": ["Asks no questions", "Contains no question"],
}
GENERIC_MATERIAL = {  # added to any response now and then, so the generic flags are met on every kind of task
    "title": ["A Few Notes", "Quick Guide", "My Answer", "In Short", "The Basics", "Here Is What I Know"],
    "greeting": ["Dear Sam,", "Hi Priya,", "Hello Mr. Okafor,", "Dear friend,", "Hi there,"],
    "sign_off": ["Best wishes,\nAlex", "Thanks,\nJordan Lee", "Kind regards,\nMaria", "Love,\nTom", "Cheers,\nKim"],
}
GENERIC_WORDS = [
    "Uses the word '{w}'",
    'Includes the word "{w}"',
    "Contains the word '{w}'",
    "Mentions '{w}' somewhere",
]
GENERIC_NO_WORDS = ["Avoids the word '{w}'", "Does not use the word '{w}'", "Never says '{w}'"]
_COUNTERS = {
    "words": count_words,
    "sentences": count_sentences,
    "items": list_lines,
    "lines": lambda t: len([line for line in t.splitlines() if line.strip()]),
}


def generic_structure(
    text: str, other_words: list[str], rng: random.Random, avoid: Sequence[str] = (), spelled: float = 0.0
) -> tuple[str, Check]:
    """One generic structure criterion for ``text`` and the check that decides it; none of the check
    types in ``avoid``; counts in words ("fifty") instead of digits with probability ``spelled``."""
    kind = rng.choices(["count", "flag", "negated", "word"], weights=[5, 4, 1, 2])[0]
    if kind == "count":
        (name, op), phrasings = rng.choice([item for item in GENERIC_COUNTS.items() if item[0][0] not in avoid])
        actual = _COUNTERS[name](text)
        if name == "words":
            n = max(10, int(round(actual * rng.uniform(0.6, 1.5) / 10)) * 10)
        else:
            n = max(1, actual + rng.choice([-2, -1, 0, 0, 1, 2]))
        shown = number_words(n) if spelled and n < 1000 and rng.random() < spelled else str(n)
        return rng.choice(phrasings).format(n=shown), Check(name, op, n)
    if kind == "flag":
        name, phrasings = rng.choice([item for item in GENERIC_FLAGS.items() if item[0] not in avoid])
        return rng.choice(phrasings), Check(name)
    if kind == "negated":
        name, phrasings = rng.choice([item for item in GENERIC_NEGATED.items() if item[0] not in avoid])
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


CLAIM_FORMS = (
    "This answer {c}.",
    "This response {c}.",
    "It {c}.",
    "As asked, this reply {c}.",
    "Note that the answer above {c}.",
    "{C}.",
    "(Criterion met: {C}.)",
    "I made sure that it {c}.",
)
"""Sentences that restate a criterion or say it is met, without meeting it: {c} the criterion with its
first letter lower-cased, {C} as written."""
NEAR_MISS_FORMS = (
    "{A} and {b} come into it too, but that is a story for another day.",
    "People often ask about {a} and {b}.",
    "There is more to say about {a}, which I will leave aside here.",
    "You may have heard about {a} and {b}.",
    "{A} matters as well, though it depends on the case.",
)
"""Sentences that only name a criterion's topic words {a}, {b} (never its fact): the hinted near misses."""
CONNECTIVES = (
    "Also worth knowing: ",
    "Another point: ",
    "Key point: ",
    "Next: ",
    "On top of that: ",
    "One more thing: ",
)
LEAD_INS = ("**Tip:** ", "**Note:** ", "**Why it matters:** ", "**In practice:** ", "**Remember:** ")
OPENERS = (
    "Good question.",
    "Here is what I would say.",
    "Short version first, details after.",
    "Happy to help with this.",
)
CLOSERS = ("Hope this helps.", "That should cover the main points.", "Good luck with it.")
HEADERS = (
    "Overview",
    "Key points",
    "What to do",
    "Details",
    "Why it matters",
    "In practice",
    "Next steps",
    "Background",
)
_PROSE = ("paragraph", "paragraphs", "lines", "headers", "bold")


def _lower_first(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]


def claim_of(criterion: str, rng: random.Random) -> str:
    """A sentence that claims ``criterion`` is met (``CLAIM_FORMS``)."""
    return rng.choice(CLAIM_FORMS).format(c=_lower_first(criterion), C=criterion.strip().rstrip("."))


def _typo(text: str, rng: random.Random) -> str:
    """``text`` with two neighbouring letters of one longer word swapped."""
    words = [m for m in re.finditer(r"[a-z]{5,}", text)]
    if not words:
        return text
    word = rng.choice(words)
    i = rng.randrange(word.start() + 1, word.end() - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


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
        mismatched_split: take mismatched criteria only from tasks of this split (judge training:
            "train", so no criterion of a held-out task is seen); None takes them from any task.
        near_miss_rate: for each unmet content or pitfall criterion, the probability of a near miss
            in the response (module doc); 0 adds none.
        claims_per_response: claims (module doc) added to each response, each about an unmet criterion
            of the task or a generic structure criterion; 0 adds none.
        varied: vary the responses (module doc): more layouts, connectives, openers, merges, typos.
        max_words: drop body items (distractors first) until the body has at most this many words
            (about 190 words is 256 tokens of the bundled model); 0: no cap.
        spelled_counts: share of generic count criteria whose number is written in words.
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
        mismatched_split: Optional[str] = None,
        near_miss_rate: float = 0.0,
        claims_per_response: int = 0,
        varied: bool = False,
        max_words: int = 0,
        spelled_counts: float = 0.0,
    ) -> None:
        if wordings < 1:
            raise ValueError(f"wordings must be >= 1, got {wordings}")
        if not 0 <= near_miss_rate <= 1 or claims_per_response < 0 or max_words < 0 or not 0 <= spelled_counts <= 1:
            raise ValueError(
                f"near_miss_rate and spelled_counts must be in [0, 1], claims_per_response and max_words >= 0 "
                f"(got {near_miss_rate}, {spelled_counts}, {claims_per_response}, {max_words})"
            )
        self.corpus = corpus
        self.rng = random.Random(seed)
        self.passage_half = passage_half
        self.paraphrase_rate = paraphrase_rate
        self.mismatched_per_response = mismatched_per_response
        self.wordings = wordings
        self.generic_per_response = generic_per_response
        self.near_miss_rate = near_miss_rate
        self.claims_per_response = claims_per_response
        self.varied = varied
        self.max_words = max_words
        self.spelled_counts = spelled_counts
        self._counter = 0
        by_domain: dict[str, list[tuple[TaskEvidence, CriterionEvidence]]] = {}
        for entry in corpus:
            if mismatched_split is not None and entry.task.split != mismatched_split:
                continue
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
        body: list[tuple[str, tuple[int, ...], str]] = []  # (text, criteria it meets, role)
        for c in entry.criteria:
            if c.kind in ("content", "pitfall") and rng.random() < (0.35 if c.kind == "pitfall" else 0.5):
                passage = rng.choice(half_of(c.evidence, self.passage_half))
                body.append((passage.text, passage.meets, "passage"))
        material = [c for c in entry.criteria if c.kind == "structure" and c.evidence]
        placed: dict[int, str] = {}
        for c in material:
            if rng.random() < 0.5:
                placed[c.index] = rng.choice(half_of(c.evidence, self.passage_half)).text
        inline = [
            (text, (k,), "passage")
            for k, text in placed.items()
            if entry.criteria[k].check.type not in MATERIAL_AT_START + MATERIAL_AT_END
        ]
        body.extend(inline)
        size = rng.choices(range(1, 13), weights=[4, 8, 9, 9, 8, 6, 5, 4, 3, 2, 2, 2])[0]
        distractors = half_of(entry.distractors, self.passage_half)
        extra = max(0, size - len(body))
        body.extend((text, (), "distractor") for text in rng.sample(distractors, min(extra, len(distractors))))
        rng.shuffle(body)
        for c in entry.criteria:  # criteria about the first or last place: usually put a passage there
            if c.place != "any" and rng.random() < 0.6:
                at = [i for i, (_, meets, _) in enumerate(body) if c.index in meets]
                if at:
                    item = body.pop(at[0])
                    body.insert(0 if c.place == "first" else len(body), item)
        if self.varied:
            self._vary_body(body)
        near_misses = self._near_misses(entry, body) if self.near_miss_rate else set()
        claimed, claimed_flags = self._claims(entry, body) if self.claims_per_response else (set(), [])

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
                hits = [i for i, (_, meets, _) in enumerate(body) if c.index in meets]
                if c.place == "first":
                    hits = [i for i in hits if i == 0]
                elif c.place == "last":
                    hits = [i for i in hits if i == len(body) - 1]
                label = bool(hits)
                evidence = tuple(spans[("body", i)] for i in hits)
            negative = ""
            if not label:
                negative = "claim" if c.index in claimed else "near-miss" if c.index in near_misses else "in-task"
            check = c.check if c.kind == "structure" else None
            for wording in self._wordings(c):
                cases.append(
                    JudgedCase(
                        entry.task, text, wording, label, c.kind, negative, evidence, group, c.weight, check=check
                    )
                )
        cases.extend(self._mismatched(entry, text, group))
        unused = [w for d in entry.distractors for w in re.findall(r"[A-Za-z]{5,}", d) if w.lower() not in text.lower()]
        avoid = LIST_CHECKS if self._layout_used == "table" else ()

        def structure_case(criterion: str, check: Check, negative: str) -> JudgedCase:
            label = check(text)
            negative = "" if label else negative
            return JudgedCase(entry.task, text, criterion, label, "structure", negative, (), group, 1.0, check=check)

        for name in claimed_flags:  # a claimed generic structure criterion is asked
            cases.append(structure_case(rng.choice(GENERIC_FLAGS[name]), Check(name), "claim"))
        for _ in range(self.generic_per_response):
            criterion, check = generic_structure(text, unused, rng, avoid, self.spelled_counts)
            cases.append(structure_case(criterion, check, "generic"))
        return cases

    # ---- hard negatives --------------------------------------------------------------------------
    def _near_misses(self, entry: TaskEvidence, body: list) -> set[int]:
        """Add near misses (module doc) for unmet content and pitfall criteria; their indices."""
        rng = self.rng
        present = {k for _, meets, _ in body for k in meets}
        used = {text for text, _, _ in body}
        chosen = set()
        for c in entry.criteria:
            if c.kind not in ("content", "pitfall") or c.index in present or rng.random() >= self.near_miss_rate:
                continue
            words = content_words(c.criterion)
            if c.kind == "pitfall":  # the right version of the mistake: another criterion's passage in close words
                close = [
                    p
                    for other in entry.criteria
                    if other.kind == "content"
                    and other.index != c.index
                    and _similar(other.criterion, c.criterion, 0.3)
                    for p in half_of(other.evidence, self.passage_half)
                    if c.index not in p.meets and p.text not in used
                ]
                if close:
                    passage = rng.choice(close)
                    body.insert(rng.randrange(len(body) + 1), (passage.text, passage.meets, "passage"))
                    chosen.add(c.index)
                continue
            sharing = [
                d
                for d in half_of(entry.distractors, self.passage_half)
                if d not in used and len(set(words) & _words(d)) >= 2
            ]
            if sharing and rng.random() < 0.5:
                hint = rng.choice(sharing)
            elif len(words) >= 2:
                a, b = rng.sample(words[:4], 2) if len(words) >= 3 else words[:2]
                hint = rng.choice(NEAR_MISS_FORMS).format(a=a, b=b, A=a.capitalize())
            else:
                continue
            body.insert(rng.randrange(len(body) + 1), (hint, (), "near-miss"))
            used.add(hint)
            chosen.add(c.index)
        return chosen

    def _claims(self, entry: TaskEvidence, body: list) -> tuple[set[int], list[str]]:
        """Add ``claims_per_response`` claims (module doc): the task criteria claimed, and the generic
        structure checks claimed (asked after the layout)."""
        rng = self.rng
        present = {k for _, meets, _ in body for k in meets}
        targets: list = [c for c in entry.criteria if c.judgeable and c.kind != "pitfall" and c.index not in present]
        targets += list(GENERIC_FLAGS)
        claimed, flags = set(), []
        for target in rng.sample(targets, min(self.claims_per_response, len(targets))):
            if isinstance(target, str):
                wording = rng.choice(GENERIC_FLAGS[target])
                flags.append(target)
            else:
                wording = rng.choice([target.criterion, *target.paraphrases])
                claimed.add(target.index)
            at = len(body) if rng.random() < 0.5 else rng.randrange(len(body) + 1)
            body.insert(at, (claim_of(wording, rng), (), "claim"))
        return claimed, flags

    # ---- varied responses --------------------------------------------------------------------------
    def _vary_body(self, body: list) -> None:
        """Typos in distractors, and the word cap (distractors dropped first), before near misses and claims."""
        rng = self.rng
        for i, (text, meets, role) in enumerate(body):
            if role == "distractor" and rng.random() < 0.15:
                body[i] = (_typo(text, rng), meets, role)
        if self.max_words:
            while len(body) > 1 and sum(count_words(t) for t, _, _ in body) > self.max_words:
                drop = [i for i, (_, _, role) in enumerate(body) if role == "distractor"]
                body.pop(drop[-1] if drop else len(body) - 1)

    # ------------------------------------------------------------------------------------------
    def _layout(
        self, entry: TaskEvidence, body: list[tuple[str, tuple[int, ...], str]], placed: dict[int, str]
    ) -> tuple[str, dict[tuple[str, int], tuple[int, int]]]:
        """The response text and the character span of every body item and placed material."""
        rng = self.rng
        layout = rng.choice(entry.layouts)
        if self.varied and set(entry.layouts) == set(LAYOUTS) and rng.random() < 0.35:
            # a table only where no criterion asks about lists and nothing goes above it (a table is no list)
            list_criteria = any(c.check is not None and c.check.type in LIST_CHECKS for c in entry.criteria)
            above = any(entry.criteria[k].check.type in MATERIAL_AT_START for k in placed)
            table_ok = not list_criteria and not above
            layout = rng.choice([name for name in VARIED_LAYOUTS if name != "table" or table_ok])
        if layout in ("numbered", "bullets", "table") and len(body) < 2:
            layout = "paragraph"
        self._layout_used = layout
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
        if self.varied and layout in _PROSE and not head and rng.random() < 0.25:
            parts += [(rng.choice(OPENERS), None), ("\n\n" if layout != "paragraph" else " ", None)]
        breaks = (
            sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(1, 2))))
            if layout in ("paragraphs", "headers") and len(body) > 1
            else []
        )
        merged = {i for i in range(1, len(body)) if rng.random() < 0.2} if self.varied and layout != "table" else set()
        if layout == "headers":
            parts += [(f"## {rng.choice(HEADERS)}\n\n", None)]
            names = rng.sample(HEADERS, len(HEADERS))
        if layout == "table":  # an intro line ending in ":" above it, so that the header row is not a title
            parts += [(rng.choice(["Here is how it breaks down:", "The main points:", "In brief:"]) + "\n\n", None)]
            parts += [(rng.choice(["| # | Point |\n|---|---|\n", "| Step | What to know |\n| --- | --- |\n"]), None)]
        number = 0
        for i, (passage, _, _) in enumerate(body):
            if i not in merged:
                number += 1
                if layout == "numbered":
                    parts.append((f"{number}. ", None))
                elif layout == "bullets":
                    parts.append((marker, None))
                elif layout == "table":
                    parts.append((f"| {number} | ", None))
                elif layout == "bold" or (self.varied and layout in _PROSE and i > 0 and rng.random() < 0.15):
                    parts.append((rng.choice(LEAD_INS if layout == "bold" else CONNECTIVES), None))
            parts.append((passage, ("body", i)))
            if layout == "table":
                parts.append((" |", None))
            if i < len(body) - 1:
                if i + 1 in merged:
                    joiner = " "
                elif i + 1 in breaks:
                    joiner = f"\n\n## {names[len(parts) % len(names)]}\n\n" if layout == "headers" else "\n\n"
                else:
                    joiner = {
                        "paragraph": " ",
                        "lines": "\n",
                        "numbered": "\n",
                        "bullets": "\n",
                        "table": "\n",
                        "bold": "\n\n",
                    }.get(layout, " ")
                parts.append((joiner, None))
        if self.varied and layout in _PROSE and not tail and rng.random() < 0.2:
            parts += [("\n\n", None), (rng.choice(CLOSERS), None)]
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
