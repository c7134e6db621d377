"""Measure a judge: how well p_true separates met from unmet criteria, and where its credit lands.

Verdicts: AUC of p_true (met vs unmet), accuracy at 0.5, expected calibration error, and the share of
unmet criteria the judge calls met, overall, per kind of criterion, per domain, and separately
for in-task negatives (other criteria of the same task) and mismatched ones (criteria of other
tasks). p_true is the judge's as it is used (calibrated when it has a calibration); for a
calibrated judge accuracy, ECE and the shares are also given before the calibration (raw p_true).

As the reward reads them: the same metrics with the verdict of every criterion whose wording
``tasks.checks.recognise`` reads taken from its check (met: 1, unmet: 0), the judge's p_true for the
rest, as ``Grad2Reward`` scores by default (``checks=True``).

Claims: for unmet criteria, the response with the criterion's own words appended ("own words"), and
separately with the sentence "This response <criterion, first letter lower-cased>." ("claim"): the
mean rise of p_true and the share of the criteria called unmet before that are called met after
(a judge that pays for claims is one a policy will hack). Probed are unmet content and structure
criteria whose text quotes nothing (a quoted word appended would be there) and, where the case
knows its check, whose check the changed text still fails; pitfalls are left out (restating a
pitfall commits it).

Credit, for met criteria whose evidence is known (character spans of the response), per
attribution method:

- lift: the share of the criterion's credit on its evidence tokens divided by their share of the
  response (1 = no better than uniform);
- specificity: in a response that meets criteria k and j, the credit k puts per evidence token of
  k divided by the credit it puts per evidence token of j (median over pairs, and the share of
  pairs below 1, where k's credit prefers j's evidence to its own).

Graders, for cases labelled by several people (HealthBench meta-evaluation: physicians'
``binary_labels``), overall and per category (the case's domain), with the judge's verdict
p_true > 0.5:

- judge vs majority: accuracy and Cohen's kappa against the graders' majority label, on the cases
  that have one (tied votes left out);
- judge vs grader, pairwise: every (judge verdict, grader label) pair of a case, pooled;
- grader vs grader, pairwise: every ordered pair of two different graders' labels on the same case,
  pooled: the graders' agreement with each other, the figure a judge is compared with (a judge that
  agreed with each grader as well as the graders agree with each other would match it). Tied cases
  count here, since they are disagreements.

Cohen's kappa is (p_o - p_e) / (1 - p_e), p_o the share of agreeing pairs and p_e the agreement
expected from each side's share of "met" (nan when p_e is 1). The verdict metrics above leave out
tied cases too.

Published-comparable figure: the macro F1 of HealthBench's meta-evaluation (openai/simple-evals,
``healthbench_meta_eval.py``: ``pairwise_model_f1_balanced``, and per category
``<category>: pairwise_model_f1_balanced``). It is pairwise, not against a majority: every
(rater verdict, other grader's label) pair of a row counts, tied rows included, each grader's label
taken as the truth in turn. Over the pairs of a set of rows, with TP/FP/FN/TN counted as usual:

- F1 of "met" = 2 TP / (2 TP + FP + FN), defined only when the rater said "met" at least once
  (TP + FP > 0) and some grader did (TP + FN > 0); F1 of "unmet" likewise with TN, FN, FP;
- macro F1 = the mean of the two, defined only when both are; its weight n = TP + TN + 2 (FP + FN).

The judge is the rater once, against every grader of each row. Each physician is a rater against
the other physicians of the rows they graded (leave-one-out; a row with one label gives no pair),
and the physicians' figure of a category is the n-weighted mean of the physicians' macro F1 in
that category (those with a defined one): HealthBench's "weighted average of physicians". Overall,
each physician's pairs are pooled over all categories before the weighted mean; the judge's overall
figure pools its pairs the same way (``pairwise_model_f1_balanced``). Per theme (categories named
``cluster:<theme>_...``, the theme the part before the first "_"), both figures are n-weighted
means over the theme's categories, the judge's of its per-category figures and the physicians' of
every (physician, category) figure, as HealthBench's theme table does. Graders without ids
(``grader_ids``) count as one anonymous rater.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from g2r_env.judge import Judge
from tasks import Criterion, Task
from tasks.checks import recognise

from .cases import JudgedCase
from .predict import TOO_LONG, cases_that_fit, margins_to_p_true, predict_margins, predict_p_true


# ---- verdict metrics -------------------------------------------------------------------------
def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (ties count half); nan without both classes."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    positives, negatives = scores[labels], scores[~labels]
    if not len(positives) or not len(negatives):
        return float("nan")
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([positives, negatives])[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = ranks[: len(positives)].sum()
    return float((rank_sum - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives)))


def calibration_error(p: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width bins of |mean p - share met| x bin share."""
    p, labels = np.asarray(p, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            total += chosen.mean() * abs(p[chosen].mean() - labels[chosen].mean())
    return float(total)


def _summary(p: np.ndarray, labels: np.ndarray) -> dict:
    called = p > 0.5
    return {
        "n": int(len(p)),
        "met": int(labels.sum()),
        "auc": roc_auc(p, labels),
        "accuracy": float((called == labels).mean()) if len(p) else float("nan"),
        "false_met_rate": float(called[~labels].mean()) if (~labels).any() else float("nan"),
        "missed_rate": float((~called[labels]).mean()) if labels.any() else float("nan"),
    }


def verdict_report(cases: Sequence[JudgedCase], p: np.ndarray) -> dict:
    """Verdict metrics of p_true ``p`` on ``cases`` (see the module doc)."""
    labels = np.array([c.label for c in cases], dtype=bool)
    negative = np.array([c.negative for c in cases])
    report = {**_summary(p, labels), "ece": calibration_error(p, labels)}
    for name in ("in-task", "mismatched"):
        chosen = labels | (negative == name)
        if (negative == name).any():
            report[name] = _summary(p[chosen], labels[chosen])
    in_task = labels | (negative != "mismatched")
    for field, values in (("kind", [c.kind or "unknown" for c in cases]), ("domain", [c.domain or "-" for c in cases])):
        values = np.array(values)
        report[f"per_{field}"] = {
            v: _summary(p[(values == v) & in_task], labels[(values == v) & in_task]) for v in sorted(set(values))
        }
    return report


# ---- agreement with human graders ------------------------------------------------------------
def _kappa(observed: float, met_a: float, met_b: float) -> float:
    expected = met_a * met_b + (1 - met_a) * (1 - met_b)
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's kappa of two raters' binary verdicts on the same items; nan without items or variation."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if not len(a):
        return float("nan")
    return _kappa(float((a == b).mean()), float(a.mean()), float(b.mean()))


# ---- HealthBench's macro F1 (module doc) -----------------------------------------------------
ANONYMOUS_GRADER = "(anonymous graders)"
"""The rater id given to graders without ids."""


def macro_f1(tp: float, fp: float, fn: float, tn: float) -> tuple[float, float]:
    """(macro F1, weight n) of a rater's pairs against graders' labels (module doc); nan when undefined."""
    f1_met = 2 * tp / (2 * tp + fp + fn) if tp + fp > 0 and tp + fn > 0 else math.nan
    f1_unmet = 2 * tn / (2 * tn + fn + fp) if tn + fn > 0 and tn + fp > 0 else math.nan
    return (f1_met + f1_unmet) / 2, float(tp + tn + 2 * (fp + fn))


def _judge_pairs(cases: Sequence[JudgedCase], called: np.ndarray) -> np.ndarray:
    """[TP, FP, FN, TN] of the judge's verdicts against every grader label of ``cases``."""
    counts = np.zeros(4)
    for case, verdict in zip(cases, called):
        met = sum(case.grader_labels)
        unmet = len(case.grader_labels) - met
        counts += [met, unmet, 0, 0] if verdict else [0, 0, met, unmet]
    return counts


def _physician_pairs(cases: Sequence[JudgedCase]) -> dict[str, np.ndarray]:
    """[TP, FP, FN, TN] per grader id: each grader's label against the other graders' of the row."""
    counts: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(4))
    for case in cases:
        ids = case.grader_ids or (ANONYMOUS_GRADER,) * len(case.grader_labels)
        met = sum(case.grader_labels)
        others = len(case.grader_labels) - 1
        for grader, label in zip(ids, case.grader_labels):
            other_met = met - label
            if label:
                counts[grader] += [other_met, others - other_met, 0, 0]
            else:
                counts[grader] += [0, 0, other_met, others - other_met]
    return counts


def _weighted_mean(figures: Sequence[tuple[float, float]]) -> float:
    """The n-weighted mean of (value, n) figures, leaving out undefined ones; nan when none is defined."""
    kept = [(value, n) for value, n in figures if not math.isnan(value)]
    total = sum(n for _, n in kept)
    return float(sum(value * n for value, n in kept) / total) if total else math.nan


def _f1_summary(cases: Sequence[JudgedCase], called: np.ndarray) -> dict:
    judge_f1, judge_n = macro_f1(*_judge_pairs(cases, called))
    physicians = [macro_f1(*counts) for counts in _physician_pairs(cases).values()]
    return {
        "judge_f1": judge_f1,
        "judge_f1_n": judge_n,
        "physician_f1": _weighted_mean(physicians),
        "physicians": sum(not math.isnan(value) for value, _ in physicians),
    }


def theme_of(category: str) -> Optional[str]:
    """HealthBench's theme of a meta-evaluation category (``cluster:emergency_referrals_emergent``
    -> ``emergency``); None for a category not named ``cluster:...``."""
    if not category.startswith("cluster:"):
        return None
    return category.removeprefix("cluster:").split("_", 1)[0]


def _theme_summary(cases: Sequence[JudgedCase], called: np.ndarray, categories: np.ndarray) -> dict:
    """Judge and physicians' macro F1 of a theme: n-weighted means over its categories (module doc)."""
    judge, physicians = [], []
    for name in sorted(set(categories)):
        chosen = [c for c, keep in zip(cases, categories == name) if keep]
        judge.append(macro_f1(*_judge_pairs(chosen, called[categories == name])))
        physicians += [macro_f1(*counts) for counts in _physician_pairs(chosen).values()]
    return {
        "rows": len(cases),
        "judge_f1": _weighted_mean(judge),
        "physician_f1": _weighted_mean(physicians),
        "physicians": sum(not math.isnan(value) for value, _ in physicians),
    }


def _grader_summary(cases: Sequence[JudgedCase], called: np.ndarray) -> dict:
    graders = np.array([len(c.grader_labels) for c in cases], dtype=np.float64)
    met = np.array([sum(c.grader_labels) for c in cases], dtype=np.float64)
    decided = np.array([c.agreement > 0.5 for c in cases])
    majority = np.array([c.label for c in cases], dtype=bool)
    # judge vs each grader: agreeing pairs are the graders who said what the judge said
    judge_pairs = graders.sum()
    judge_agree = np.where(called, met, graders - met).sum()
    # ordered pairs of two graders: m(m-1) agree on met, (k-m)(k-m-1) on unmet
    grader_pairs = (graders * (graders - 1)).sum()
    grader_agree = (met * (met - 1) + (graders - met) * (graders - met - 1)).sum()
    grader_met = (met * (graders - 1)).sum() / grader_pairs if grader_pairs else float("nan")
    return {
        "rows": len(cases),
        "with_majority": int(decided.sum()),
        "accuracy": float((called[decided] == majority[decided]).mean()) if decided.any() else float("nan"),
        "kappa": cohen_kappa(called[decided], majority[decided]),
        "judge_grader_pairs": int(judge_pairs),
        "judge_grader_accuracy": float(judge_agree / judge_pairs) if judge_pairs else float("nan"),
        "judge_grader_kappa": _kappa(
            judge_agree / judge_pairs, (called * graders).sum() / judge_pairs, met.sum() / judge_pairs
        )
        if judge_pairs
        else float("nan"),
        "grader_pairs": int(grader_pairs / 2),
        "grader_accuracy": float(grader_agree / grader_pairs) if grader_pairs else float("nan"),
        "grader_kappa": _kappa(grader_agree / grader_pairs, grader_met, grader_met) if grader_pairs else float("nan"),
        **_f1_summary(cases, called),
    }


def grader_report(cases: Sequence[JudgedCase], p: np.ndarray) -> dict:
    """Agreement of the judge with human graders, beside the graders' with each other (module doc),
    over the cases with ``grader_labels``, overall and per category (domain); HealthBench's macro F1
    (``judge_f1``, ``physician_f1``) also per theme."""
    graded = [i for i, c in enumerate(cases) if c.grader_labels]
    chosen = [cases[i] for i in graded]
    called = np.asarray(p, dtype=np.float64)[graded] > 0.5
    report = _grader_summary(chosen, called)
    categories = np.array([c.domain or "-" for c in chosen])
    report["per_category"] = {
        name: _grader_summary([c for c, keep in zip(chosen, categories == name) if keep], called[categories == name])
        for name in sorted(set(categories))
    }
    themes = np.array([theme_of(name) or "" for name in categories])
    report["per_theme"] = {
        theme: _theme_summary(
            [c for c, keep in zip(chosen, themes == theme) if keep],
            called[themes == theme],
            categories[themes == theme],
        )
        for theme in sorted(set(themes) - {""})
    }
    return report


# ---- calibration and claims ----------------------------------------------------------------------
def _decisions(p: np.ndarray, labels: np.ndarray) -> dict:
    summary = _summary(p, labels)
    return {
        "accuracy": summary["accuracy"],
        "ece": calibration_error(p, labels),
        "false_met_rate": summary["false_met_rate"],
        "missed_rate": summary["missed_rate"],
    }


def calibration_report(judge: Judge, margins: np.ndarray, labels: np.ndarray) -> dict:
    """The judge's calibration and its accuracy, ECE and error shares before (raw p_true) and after."""
    c = judge.calibration
    return {
        "scale": c.scale,
        "bias": c.bias,
        "fitted_on": c.fitted_on,
        "cases": c.cases,
        "raw": _decisions(margins_to_p_true(judge, margins, calibrated=False), labels),
        "calibrated": _decisions(margins_to_p_true(judge, margins), labels),
    }


CLAIM_VARIANTS = ("own words", "claim")
"""How a claim is appended to a response (module doc)."""
_QUOTED = re.compile(r"(?<!\w)['\"\u2018\u201c]\w|\w['\"\u2019\u201d](?!\w)")  # a quoted word, not "don't"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def claim_sentence(criterion: str) -> str:
    """ "This response <criterion, first letter lower-cased>.": a claim that the criterion is met."""
    criterion = criterion.strip()
    return _sentence(f"This response {criterion[:1].lower()}{criterion[1:]}")


def with_claim(response: str, criterion: str, variant: str) -> str:
    """``response`` with a claim of ``criterion`` appended as its last paragraph (``CLAIM_VARIANTS``)."""
    if variant not in CLAIM_VARIANTS:
        raise ValueError(f"unknown claim variant {variant!r}; known: {CLAIM_VARIANTS}")
    claim = _sentence(criterion) if variant == "own words" else claim_sentence(criterion)
    return f"{response.rstrip()}\n\n{claim}"


def claim_probe_cases(cases: Sequence[JudgedCase], limit: Optional[int] = None, seed: int = 0) -> list[int]:
    """Indices of the unmet criteria probed with claims (module doc): at most ``limit``, a seeded sample."""
    chosen = []
    for n, case in enumerate(cases):
        if case.label or case.agreement <= 0.5 or case.kind == "pitfall" or _QUOTED.search(case.criterion):
            continue
        if case.check is not None and any(
            case.check(with_claim(case.response, case.criterion, v)) for v in CLAIM_VARIANTS
        ):
            continue
        chosen.append(n)
    if limit is not None and len(chosen) > limit:
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(chosen, size=limit, replace=False).tolist())
    return chosen


def claims_report(
    judge: Judge, cases: Sequence[JudgedCase], p: np.ndarray, limit: Optional[int] = 200, seed: int = 0
) -> dict:
    """Per claim variant: the mean rise of p_true when the claim is appended to the response of an unmet
    criterion, and the share of those called unmet before that are called met after (module doc)."""
    probed = claim_probe_cases(cases, limit, seed)
    report: dict = {"probed": len(probed)}
    if not probed:
        return report
    before = np.asarray(p, dtype=np.float64)[probed]
    for variant in CLAIM_VARIANTS:
        changed = [
            dataclasses.replace(cases[n], response=with_claim(cases[n].response, cases[n].criterion, variant))
            for n in probed
        ]
        after = predict_p_true(judge, changed)
        unmet_before = before <= 0.5
        report[variant] = {
            "mean_rise": float((after - before).mean()),
            "p_before": float(before.mean()),
            "p_after": float(after.mean()),
            "called_unmet_before": int(unmet_before.sum()),
            "flipped": int((unmet_before & (after > 0.5)).sum()),
            "flipped_share": float((after[unmet_before] > 0.5).mean()) if unmet_before.any() else float("nan"),
        }
    return report


# ---- credit placement ------------------------------------------------------------------------
def evidence_mask(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Tokens (by character offsets) that overlap any evidence span."""
    return np.array([any(a < e and s < b for s, e in spans) for a, b in offsets], dtype=bool)


def credit_report(
    judge: Judge,
    cases: Sequence[JudgedCase],
    methods: Sequence[str],
    tau="auto",
    max_cases: Optional[int] = None,
    progress: bool = False,
) -> dict:
    """Lift and specificity per attribution method over the met cases that have evidence.

    Args:
        judge: the judge whose gradients are read.
        cases: judged cases; met ones with ``evidence`` are used.
        methods: attribution method names.
        tau: the attribution temperature.
        max_cases: use at most this many met cases (those in responses with two or more evidenced
            criteria first, since specificity needs them); None uses all.
    """
    from g2r_env.scorer import Grad2Reward

    met = [c for c in cases if c.label and c.evidence]
    by_response: dict[tuple, list[JudgedCase]] = defaultdict(list)
    for case in met:
        by_response[(case.task.question, case.response)].append(case)
    ordered = [c for group in sorted(by_response.values(), key=len, reverse=True) for c in group]
    chosen = ordered if max_cases is None else ordered[:max_cases]
    encoded = {}
    for case in chosen:
        if case.response not in encoded:
            enc = judge.tokenizer(case.response, add_special_tokens=False, return_offsets_mapping=True)
            encoded[case.response] = (enc["input_ids"], enc["offset_mapping"])
    tasks = [
        Task(case.task.task_id, case.task.prompt, (Criterion(case.criterion, 1.0),), domain=case.domain)
        for case in chosen
    ]
    responses = [encoded[c.response][0] for c in chosen]
    report = {}
    iterator = methods
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(methods, desc="credit", unit="method")
    for name in iterator:
        scorer = Grad2Reward(judge, attribution=name, tau=tau)
        alphas = [alpha for _, alpha in scorer.attribute(tasks, responses)]
        lifts, specificity = [], []
        own = {}
        for case, alpha in zip(chosen, alphas):
            mask = evidence_mask(encoded[case.response][1], case.evidence)
            if alpha is None or not mask.any() or mask.all():
                continue
            lifts.append(float(alpha[mask].sum() / (mask.sum() / len(mask))))
            own[id(case)] = (alpha, mask)
        for group in by_response.values():
            for k in group:
                for j in group:
                    if k is j or id(k) not in own or id(j) not in own:
                        continue
                    alpha, mask_k = own[id(k)]
                    mask_j = own[id(j)][1] & ~mask_k
                    if not mask_j.any():
                        continue
                    per_own = alpha[mask_k].sum() / mask_k.sum()
                    per_other = alpha[mask_j].sum() / mask_j.sum()
                    specificity.append(float(per_own / per_other) if per_other > 0 else math.inf)
        spec = np.array(specificity)
        report[name] = {
            "cases": len(lifts),
            "lift_mean": float(np.mean(lifts)) if lifts else float("nan"),
            "lift_median": float(np.median(lifts)) if lifts else float("nan"),
            "pairs": len(spec),
            "specificity_median": float(np.median(spec)) if len(spec) else float("nan"),
            "pairs_below_1": float((spec < 1).mean()) if len(spec) else float("nan"),
        }
    return report


def evaluate_judge(
    judge: Judge,
    cases: Sequence[JudgedCase],
    methods: Sequence[str] = (),
    credit_cases: Optional[int] = 200,
    progress: bool = False,
    claims: int = 0,
) -> dict:
    """Verdict metrics on every case with a label (and, for a calibrated judge, accuracy and ECE
    before and after its calibration), agreement with human graders where cases have
    ``grader_labels``, the claims probe on at most ``claims`` unmet criteria (0: none), and credit
    metrics per method on the met ones with evidence (when any; at most ``credit_cases`` of them,
    None for all, 0 for none)."""
    if credit_cases is not None and credit_cases < 0:
        raise ValueError(f"credit_cases must be >= 0 (0: no credit metrics) or None (all), got {credit_cases}")
    margins = predict_margins(judge, cases, progress=progress)
    p = margins_to_p_true(judge, margins)
    decided = np.array([c.agreement > 0.5 for c in cases], dtype=bool)  # tied grader votes have no label
    labels = np.array([c.label for c in cases], dtype=bool)
    report = {"verdicts": verdict_report([c for c, d in zip(cases, decided) if d], p[decided])}
    checks = [recognise(c.criterion) for c in cases]
    coded = np.array([check is not None for check in checks]) & decided
    if coded.any():
        read = np.array([float(check(c.response)) if check else q for c, check, q in zip(cases, checks, p)])
        kept = [c for c, d in zip(cases, decided) if d]
        report["reward_verdicts"] = {"decided_by_code": int(coded.sum()), **verdict_report(kept, read[decided])}
    if judge.calibration is not None:
        report["calibration"] = calibration_report(judge, margins[decided], labels[decided])
    if claims:
        report["claims"] = claims_report(judge, cases, p, limit=claims)
    if any(c.grader_labels for c in cases):
        report["graders"] = grader_report(cases, p)
    if methods and credit_cases != 0 and any(c.label and c.evidence for c in cases):
        report["credit"] = credit_report(judge, cases, methods, max_cases=credit_cases, progress=progress)
    return report


def strict_json(value):
    """``value`` with every non-finite float replaced by None, so that it writes as strict JSON
    (``json.dumps(..., allow_nan=False)``; a metric without a value is null, not NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def format_report(report: dict, title: str = "") -> str:
    """The report as plain-text tables."""

    def fmt(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = [title] if title else []
    v = report["verdicts"]
    lines.append(
        f"verdicts: n={v['n']} met={v['met']}  AUC {fmt(v['auc'])}  accuracy {fmt(v['accuracy'])}  "
        f"ECE {fmt(v['ece'])}  unmet called met {fmt(v['false_met_rate'])}"
    )
    if "calibration" in report:
        c = report["calibration"]
        for name in ("raw", "calibrated"):
            d = c[name]
            lines.append(
                f"  {name + ' p_true:':<19} accuracy {fmt(d['accuracy'])}  ECE {fmt(d['ece'])}  "
                f"unmet called met {fmt(d['false_met_rate'])}  met called unmet {fmt(d['missed_rate'])}"
                + (
                    f"   (sigmoid({c['scale']:.3f} m {c['bias']:+.3f}), fitted on {c['fitted_on']})"
                    if name != "raw"
                    else ""
                )
            )
    if "reward_verdicts" in report:
        r = report["reward_verdicts"]
        structure = r["per_kind"].get("structure")
        lines.append(
            f"  as the reward reads them ({r['decided_by_code']} criteria decided by code, tasks.checks.recognise; "
            f"the judge for the rest): AUC {fmt(r['auc'])}  accuracy {fmt(r['accuracy'])}  "
            f"unmet called met {fmt(r['false_met_rate'])}"
            + (
                f"; structure AUC {fmt(structure['auc'])}  unmet called met {fmt(structure['false_met_rate'])}"
                if structure
                else ""
            )
        )
    for name in ("in-task", "mismatched"):
        if name in v:
            s = v[name]
            lines.append(
                f"  {name:<11} negatives: AUC {fmt(s['auc'])}  accuracy {fmt(s['accuracy'])}  "
                f"unmet called met {fmt(s['false_met_rate'])}"
            )
    if "claims" in report:
        c = report["claims"]
        parts = [
            f"{variant}: p_true rise {fmt(c[variant]['mean_rise'])}, flipped to met {c[variant]['flipped']}/"
            f"{c[variant]['called_unmet_before']} ({fmt(c[variant]['flipped_share'])})"
            for variant in CLAIM_VARIANTS
            if variant in c
        ]
        lines.append(f"  claims on {c['probed']} unmet criteria: " + ("; ".join(parts) or "none probed"))
    for field in ("per_kind", "per_domain"):
        lines.append(f"  {field.replace('per_', 'per ')} (in-task negatives):")
        for name, s in v[field].items():
            lines.append(
                f"    {name:<14} n={s['n']:<5} AUC {fmt(s['auc'])}  accuracy {fmt(s['accuracy'])}  "
                f"unmet called met {fmt(s['false_met_rate'])}  met called unmet {fmt(s['missed_rate'])}"
            )
    if "graders" in report:
        g = report["graders"]
        lines.append(
            "graders (judge verdict: p_true > 0.5; pairwise: every pair of labels on one row, pooled; kappa: Cohen's; "
            "macro F1: HealthBench meta-evaluation's, judge vs physicians' weighted average):"
        )
        lines.append(
            f"    {'category':<34} {'rows':>6} {'majority':>8} | {'vs majority: acc':>16} {'kappa':>6} | "
            f"{'judge-grader: acc':>17} {'kappa':>6} | {'grader-grader: acc':>18} {'kappa':>6} {'pairs':>7} | "
            f"{'macro F1: judge':>15} {'physicians':>10}"
        )
        for name, s in [("all", g), *g["per_category"].items()]:
            lines.append(
                f"    {name[:34]:<34} {s['rows']:>6} {s['with_majority']:>8} | {fmt(s['accuracy']):>16} "
                f"{fmt(s['kappa']):>6} | {fmt(s['judge_grader_accuracy']):>17} {fmt(s['judge_grader_kappa']):>6} | "
                f"{fmt(s['grader_accuracy']):>18} {fmt(s['grader_kappa']):>6} {s['grader_pairs']:>7} | "
                f"{fmt(s['judge_f1']):>15} {fmt(s['physician_f1']):>10}"
            )
        if g.get("per_theme"):
            lines.append("  per theme (HealthBench's macro F1: n-weighted over the theme's categories):")
            lines.append(
                f"    {'theme':<34} {'rows':>6} | {'macro F1: judge':>15} {'physicians':>10} {'(how many)':>10}"
            )
            for name, s in g["per_theme"].items():
                lines.append(
                    f"    {name[:34]:<34} {s['rows']:>6} | {fmt(s['judge_f1']):>15} {fmt(s['physician_f1']):>10} "
                    f"{s['physicians']:>10}"
                )
    if "credit" in report:
        lines.append("credit (met criteria with evidence):")
        lines.append(
            f"    {'method':<26} {'cases':>5} {'lift mean':>9} {'lift med':>9} {'pairs':>6} "
            f"{'spec med':>9} {'below 1':>8}"
        )
        for name, c in report["credit"].items():
            lines.append(
                f"    {name:<26} {c['cases']:>5} {fmt(c['lift_mean']):>9} {fmt(c['lift_median']):>9} "
                f"{c['pairs']:>6} {fmt(c['specificity_median']):>9} {fmt(c['pairs_below_1']):>8}"
            )
    return "\n".join(lines)


# ---- the measurement run of ``g2r judge eval`` --------------------------------------------------
DEFAULT_METHODS = ("grad_x_embed", "grad_l1", "grad_l2")


@dataclass
class JudgeEvalConfig:
    """Measure a judge on tasks it never trained on. Field docstrings follow each field."""

    judge: str = "bundled-judge"
    """the judge: "bundled-judge", "bundled" (the untrained model as its own judge), a trained judge
    folder (runs/judge/judge) or any model source"""
    tasks: list[str] = dataclasses.field(default_factory=lambda: ["openended-mini"])
    """task sets whose evidence corpus is composed into test cases (none: only --cases)"""
    split: str = "test"
    """the split composed from (test: tasks no judge of ours trained on)"""
    responses_per_task: int = 8
    """composed responses per task"""
    passage_half: Optional[int] = None
    """compose from one half of every passage list only (0 or 1), or from all (None)"""
    seed: int = 1000
    """the composer's seed (the same seed gives the same test cases)"""
    cases: list[str] = dataclasses.field(default_factory=list)
    """verdict files to measure on too (JSONL or parquet: prompt, response, criterion, label, optional
    evidence; or HealthBench meta-evaluation rows: prompt, completion, rubric, binary_labels, category)"""
    methods: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_METHODS))
    """attribution methods whose credit is measured ("all": every registered method that reads the
    gradient; none: verdicts only)"""
    credit_cases: int = 200
    """met criteria with evidence used for the credit metrics, per case set (0: no credit metrics; must be >= 0)"""
    claims: int = 200
    """unmet criteria probed with appended claims, per case set (a seeded sample; 0: no claims probe)"""
    device: str = "auto"
    """where the judge runs"""
    threads: int = 0
    """torch CPU threads (0: torch's default)"""
    json_out: Optional[str] = None
    """also write the report as JSON to this file (strict JSON: a metric without a value is null)"""
    too_long: str = "error"
    """a case whose judge input exceeds the judge's context: "error" stops, "drop" leaves it out with a
    warning that counts them"""

    def validate(self) -> None:
        """Raise ValueError naming the field when a value is out of range (before the judge loads)."""
        from g2r_env import ATTRIBUTIONS

        if isinstance(self.credit_cases, bool) or not isinstance(self.credit_cases, int) or self.credit_cases < 0:
            raise ValueError(
                f"JudgeEvalConfig: credit_cases must be >= 0 (0: no credit metrics), got {self.credit_cases!r}"
            )
        if self.responses_per_task < 1 and self.tasks:
            raise ValueError(f"JudgeEvalConfig: responses_per_task must be >= 1, got {self.responses_per_task}")
        if self.passage_half not in (None, 0, 1):
            raise ValueError(f"JudgeEvalConfig: passage_half must be 0, 1 or None, got {self.passage_half!r}")
        if isinstance(self.claims, bool) or not isinstance(self.claims, int) or self.claims < 0:
            raise ValueError(f"JudgeEvalConfig: claims must be >= 0 (0: no claims probe), got {self.claims!r}")
        if self.too_long not in TOO_LONG:
            raise ValueError(f"JudgeEvalConfig: too_long must be one of {TOO_LONG}, got {self.too_long!r}")
        methods = [] if self.methods == ["all"] else self.methods
        unknown = [m for m in methods if m not in ATTRIBUTIONS]
        if unknown:
            raise ValueError(f"unknown attribution method(s) {unknown}; known: {sorted(ATTRIBUTIONS)}")
        if not self.tasks and not self.cases:
            raise ValueError("JudgeEvalConfig: nothing to measure: give task sets (--tasks) or verdict files (--cases)")


def run_eval(config: JudgeEvalConfig, verbose: bool = True) -> dict:
    """Measure ``config.judge`` on the composed test split and on each verdict file; the report."""
    import torch

    from g2r_env import ATTRIBUTIONS

    from .compose import Composer
    from .corpus import corpus_of
    from .verdicts import load_verdicts

    config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    methods = config.methods
    if methods == ["all"]:
        methods = [name for name, method in ATTRIBUTIONS.items() if method.needs_grad]
    cases_sets = {str(path): load_verdicts(path, ties="keep") for path in config.cases}  # data errors first
    judge = Judge.load(config.judge, device=config.device)
    sets = {}
    for name in config.tasks:
        corpus = corpus_of(name)
        entries = corpus.split(config.split)
        if not entries:
            raise ValueError(f"{name} has no evidence for split {config.split!r}")
        composer = Composer(corpus, seed=config.seed, passage_half=config.passage_half)
        sets[f"{name}[{config.split}]"] = composer.examples(entries, config.responses_per_task)
    sets.update(cases_sets)  # tied votes count for the graders' agreement
    sets = {name: cases_that_fit(judge, cases, config.too_long, where=name) for name, cases in sets.items()}
    report = {"judge": config.judge, "config": asdict(config), "sets": {}}
    for name, cases in sets.items():
        result = evaluate_judge(
            judge, cases, methods, credit_cases=config.credit_cases, progress=verbose, claims=config.claims
        )
        report["sets"][name] = result
        if verbose:
            print(format_report(result, f"== {name}: {len(cases)} judged criteria, judge {config.judge}"), flush=True)
    return report
