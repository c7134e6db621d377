"""How far ``tasks.checks.recognise`` reads checks out of criteria, and whether it reads them right.

Every criterion of the bundled task sets' evidence corpora (openended-mini, judge-extra), with its
paraphrases, is given to the recogniser:

- a ``structure`` criterion has the corpus's own check: a recognised check must decide every
  composed response (``g2r_judge.compose.Composer``) of its task as the corpus check does;
- a ``content``, ``pitfall`` or ``untestable`` criterion is for the judge: a recognised check there
  is listed with its text, and it is a false positive wherever it decides a composed response
  otherwise than the corpus's label of that criterion (a content criterion may be exact too: "ends
  with a question to the reader", whose passage the composer places last).

The composer's generic structure criteria (``GENERIC_*`` phrasings, with numbers and words filled
in) are measured the same way, on the pooled composed responses.

    PYTHONPATH=. python benchmarks/check_recogniser.py [--responses 40] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections import Counter

from g2r_judge.compose import (
    GENERIC_COUNTS,
    GENERIC_FLAGS,
    GENERIC_NEGATED,
    GENERIC_NO_WORDS,
    GENERIC_WORDS,
    Composer,
)
from g2r_judge.corpus import corpus_of
from tasks.checks import Check, recognise
from tasks.loaders import BUNDLED


def disagreements(recognised: Check, truth: Check, texts: list[str]) -> int:
    """Responses on which the two checks decide differently."""
    return sum(recognised(text) != truth(text) for text in texts)


def generic_criteria() -> list[tuple[str, Check]]:
    """Every generic phrasing of the composer with its check (counts at a few sizes, two words)."""
    out = []
    for (name, op), phrasings in GENERIC_COUNTS.items():
        for n in (1, 2, 3, 5, 10, 60, 150):
            out += [(p.format(n=n), Check(name, op, n)) for p in phrasings]
    for name, phrasings in GENERIC_FLAGS.items():
        out += [(p, Check(name)) for p in phrasings]
    for name, phrasings in GENERIC_NEGATED.items():
        out += [(p, Check(name, negate=True)) for p in phrasings]
    for word in ("light", "because"):
        out += [(p.format(w=word), Check("contains", text=word)) for p in GENERIC_WORDS]
        out += [(p.format(w=word), Check("contains", text=word, negate=True)) for p in GENERIC_NO_WORDS]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=40, help="composed responses per task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    seen, recognised = Counter(), Counter()
    compared = decisions = wrong_decisions = 0
    wrong, false_positives, pool = [], [], []
    for name in BUNDLED:
        corpus = corpus_of(name)
        composer = Composer(corpus, seed=args.seed, generic_per_response=1)
        for entry in corpus:
            composed = [composer.compose(entry) for _ in range(args.responses)]
            texts = list(dict.fromkeys(cases[0].response for cases in composed))
            labels = {}  # (wording, response) -> the corpus's label, for every judgeable criterion
            for cases in composed:
                for case in cases:
                    labels[case.criterion, case.response] = case.label
            pool += texts
            for c in entry.criteria:
                for wording in (c.criterion, *c.paraphrases):
                    seen[c.kind] += 1
                    check = recognise(wording)
                    if check is None:
                        continue
                    recognised[c.kind] += 1
                    if c.kind != "structure":
                        wordings = (c.criterion, *c.paraphrases)
                        labelled = [(r, lab) for (w, r), lab in labels.items() if w in wordings]
                        bad = sum(check(r) != lab for r, lab in labelled)
                        false_positives.append((c.kind, wording, check.to_spec(), bad, len(labelled)))
                        continue
                    compared += 1
                    decisions += len(texts)
                    bad = disagreements(check, c.check, texts)
                    wrong_decisions += bad
                    if bad:
                        wrong.append((wording, check.to_spec(), c.check.to_spec(), bad, len(texts)))

    print(f"criteria seen (wordings: criteria and paraphrases): {sum(seen.values())}")
    for kind in ("structure", "content", "pitfall", "untestable"):
        print(f"  {kind:<10} {seen[kind]:>5} seen, {recognised[kind]:>4} recognised")
    share = recognised["structure"] / max(seen["structure"], 1)
    print(f"structure coverage: {recognised['structure']}/{seen['structure']} = {share:.1%}")
    print(
        f"agreement with corpus checks: {compared} recognised structure wordings, {decisions} decisions on "
        f"composed responses, {wrong_decisions} different ({len(wrong)} wordings)"
    )
    for wording, got, truth, bad, n in wrong:
        print(f"  DIFFERS {bad}/{n}: {wording!r}: recognised {got}, corpus {truth}")
    wrong_elsewhere = [f for f in false_positives if f[3] or not f[4]]
    print(
        f"content/pitfall/untestable recognised: {len(false_positives)}; false positives (deciding a composed "
        f"response otherwise than the corpus's label, or never composed): {len(wrong_elsewhere)}"
    )
    for kind, wording, spec, bad, n in false_positives:
        print(f"  {kind}: {wording!r} -> {spec}: {bad} of {n} composed responses decided otherwise")

    generic = generic_criteria()
    found = [(text, truth, recognise(text)) for text, truth in generic]
    hits = [(text, truth, check) for text, truth, check in found if check is not None]
    bad_generic = [(text, truth, check) for text, truth, check in hits if disagreements(check, truth, pool)]
    print(
        f"composer's generic structure criteria: {len(generic)} seen, {len(hits)} recognised "
        f"({len(hits) / len(generic):.1%}), {len(bad_generic)} deciding any of {len(pool)} composed responses "
        "differently"
    )
    for text, truth, check in bad_generic:
        print(f"  DIFFERS: {text!r}: recognised {check.to_spec()}, composer {truth.to_spec()}")
    missed = sorted({text for text, _, check in found if check is None})
    print(f"  not recognised (left to the judge): {len(missed)}")
    for text in missed:
        print(f"    {text!r}")


if __name__ == "__main__":
    main()
