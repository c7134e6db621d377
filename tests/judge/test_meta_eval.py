"""HealthBench's physician meta-evaluation as verdict files: majority cases, agreement with the
physicians, and judge training on them. Fixtures are written in the real schema."""

import itertools
import json
import warnings

import numpy as np
import pytest
from rows import meta_eval_row, write_jsonl, write_parquet
from tiny import verdict_judge_config

from g2r_judge.cases import JudgedCase, task_for_prompt
from g2r_judge.verdicts import VerdictFormatError, load_verdicts

# ---- HealthBench meta-evaluation as verdicts ----------------------------------------------------
META_LABELS = [[True, True, False], [False, False], [True, False], [True], [False, True, True, True]]


def meta_eval_rows():
    categories = ["cluster:a", "cluster:a", "cluster:b", "cluster:b", "cluster:b"]
    return [meta_eval_row(k, labels, categories[k]) for k, labels in enumerate(META_LABELS)]


def test_meta_eval_rows_become_majority_cases_with_agreement(tmp_path):
    path = write_jsonl(tmp_path / "meta.jsonl", meta_eval_rows())
    with pytest.warns(UserWarning, match=r"1 row\(s\) have a tied grader vote"):
        cases = load_verdicts(path)
    assert [c.group for c in cases] == ["c0", "c1", "c3", "c4"]  # c2 is a 1-1 tie
    assert [c.label for c in cases] == [True, False, True, True]
    assert [c.agreement for c in cases] == pytest.approx([2 / 3, 1.0, 1.0, 0.75])
    assert cases[0].grader_labels == (True, True, False)
    assert cases[0].criterion == "Advises seeing a doctor if the rash spreads"
    assert cases[0].response.startswith("A rash like this (0)")
    assert (cases[0].task.task_id, cases[0].domain, cases[1].negative) == ("p0", "cluster:a", "in-task")
    assert cases[0].task.messages == [{"role": "user", "content": "Is my rash (0) serious?"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = load_verdicts(path, ties="keep")
    assert [(c.group, c.label, c.agreement) for c in kept][2] == ("c2", False, 0.5)
    from_parquet = load_verdicts(write_parquet(tmp_path / "meta.parquet", meta_eval_rows()), ties="keep")
    assert [(c.group, c.label, c.grader_labels) for c in from_parquet] == [
        (c.group, c.label, c.grader_labels) for c in kept
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"binary_labels": []}, "'binary_labels' must be a non-empty list"),
        ({"binary_labels": [True, "yes"]}, r"binary_labels\[1\]: the verdict must be true/false"),
        ({"anonymized_physician_ids": ["doc0"]}, "one grader per label"),
        ({"completion": ""}, "'completion' must be a non-empty string"),
        ({"rubric": None}, "'rubric' must be a non-empty string"),
        ({"prompt": 7}, "bad prompt"),
    ],
)
def test_bad_meta_eval_rows_name_file_and_line(tmp_path, change, message):
    rows = [meta_eval_row(0, [True, True]), {**meta_eval_row(1, [True, False, False]), **change}]
    path = write_jsonl(tmp_path / "meta.jsonl", rows)
    with pytest.raises(VerdictFormatError, match=rf"^{path}:2: .*{message}"):
        load_verdicts(path)


def case(labels, category):
    met = sum(labels)
    label = 2 * met > len(labels)
    return JudgedCase(
        task_for_prompt("q", "t", category),
        "r",
        "c",
        label,
        agreement=max(met, len(labels) - met) / len(labels),
        grader_labels=tuple(labels),
    )


def test_cohen_kappa_by_hand():
    from g2r_judge.evaluation import cohen_kappa

    # p_o = 3/4; p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))  # no variation: chance agreement is 1


def test_grader_report_by_hand_and_by_enumeration():
    from g2r_judge.evaluation import cohen_kappa, grader_report

    cases = [case([True, True, False], "a"), case([False, False], "a"), case([True, False], "b")]
    p = np.array([0.9, 0.8, 0.2])  # judge: met, met, unmet
    report = grader_report(cases, p)
    # vs majority (the tie left out): right on row 0, wrong on row 1; kappa 0 (p_o 1/2, p_e 1/2)
    assert (report["rows"], report["with_majority"]) == (3, 2)
    assert report["accuracy"] == pytest.approx(0.5) and report["kappa"] == pytest.approx(0.0)
    # judge vs each physician: 2 of 3 + 0 of 2 + 1 of 2 agree; judge met 5/7, physicians 3/7
    assert report["judge_grader_accuracy"] == pytest.approx(3 / 7)
    assert report["judge_grader_kappa"] == pytest.approx((3 / 7 - 23 / 49) / (1 - 23 / 49))
    # physician pairs (ordered): 2 of 6 + 2 of 2 + 0 of 2 agree; met share 1/2
    assert (report["grader_pairs"], report["grader_accuracy"]) == (5, pytest.approx(0.4))
    assert report["grader_kappa"] == pytest.approx(-0.2)
    # the same figures from explicit pairs
    judge_pairs = [(pi > 0.5, label) for c, pi in zip(cases, p) for label in c.grader_labels]
    assert report["judge_grader_kappa"] == pytest.approx(cohen_kappa(*zip(*judge_pairs)))
    grader_pairs = [pair for c in cases for pair in itertools.permutations(c.grader_labels, 2)]
    assert report["grader_kappa"] == pytest.approx(cohen_kappa(*zip(*grader_pairs)))
    assert report["per_category"]["b"]["with_majority"] == 0
    assert np.isnan(report["per_category"]["b"]["accuracy"])
    assert report["per_category"]["a"]["grader_accuracy"] == pytest.approx(4 / 8)


def test_judge_eval_reports_agreement_with_physicians(tmp_path, tiny_model, capsys):
    from g2r_cli.judge import main
    from g2r_env import Judge
    from g2r_judge.evaluation import grader_report, strict_json
    from g2r_judge.predict import predict_p_true

    path = write_jsonl(tmp_path / "meta.jsonl", meta_eval_rows())
    out = tmp_path / "report.json"
    argv = ["eval", "--judge", tiny_model, "--tasks", "--cases", str(path), "--methods"]
    assert main([*argv, "--device", "cpu", "--json-out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "grader-grader: acc" in text and "cluster:a" in text
    result = json.loads(out.read_text())["sets"][str(path)]
    assert result["verdicts"]["n"] == 4  # the tie has no majority label
    assert "credit" not in result  # no evidence spans in this data
    cases = load_verdicts(path, ties="keep")
    p = predict_p_true(Judge.load(tiny_model, device="cpu"), cases)
    expected = strict_json(grader_report(cases, p))
    assert result["graders"] == expected
    assert result["graders"]["grader_pairs"] == 3 + 1 + 1 + 0 + 6


def test_judge_train_accepts_meta_eval_verdicts(tmp_path, tiny_model):
    from g2r_judge.training import JudgeTrainer

    path = write_jsonl(tmp_path / "meta.jsonl", meta_eval_rows())
    config = verdict_judge_config(
        tiny_model, path, tmp_path / "judge", verdicts_per_step=4, steps=1, lora_rank=0, checkpoint_every=0
    )
    with pytest.warns(UserWarning, match="tied grader vote"):
        trainer = JudgeTrainer(config)
    assert [(c.group, c.label) for c in trainer.verdict_cases] == [
        ("c0", True),
        ("c1", False),
        ("c3", True),
        ("c4", True),
    ]
    examples = trainer.examples(0)
    assert len(examples) == 4 and all(c.grader_labels for c in examples)
    metrics = trainer.train_step()
    assert metrics["examples"] == 4 and np.isfinite(metrics["loss"])


# ---- HealthBench's published macro F1 -----------------------------------------------------------
EMERGENT, NON_EMERGENT, HEDGING = (
    "cluster:emergency_referrals_emergent",
    "cluster:emergency_referrals_non-emergent",
    "cluster:hedging_any-reducible-uncertainty",
)
# (category, {physician: label}, the judge's verdict) per row, in the real schema below
F1_ROWS = [
    (EMERGENT, {"d0": True, "d1": True, "d2": False}, True),
    (EMERGENT, {"d0": False, "d1": False}, False),
    (NON_EMERGENT, {"d1": True, "d2": False}, False),  # a tied vote counts here
    (NON_EMERGENT, {"d0": True}, True),  # one label: a judge pair, no physician pair
    (HEDGING, {"d0": False, "d1": True, "d2": True, "d3": True}, False),
    (NON_EMERGENT, {"d1": False, "d2": True}, True),
]


def f1_meta_eval_file(tmp_path):
    rows = []
    for k, (category, labels, _) in enumerate(F1_ROWS):
        row = meta_eval_row(k, list(labels.values()), category)
        row["anonymized_physician_ids"] = list(labels)
        rows.append(row)
    return write_jsonl(tmp_path / "meta.jsonl", rows)


def test_macro_f1_equals_healthbench_definition_by_hand(tmp_path):
    from g2r_judge.evaluation import grader_report

    cases = load_verdicts(f1_meta_eval_file(tmp_path), ties="keep")
    assert [c.grader_ids for c in cases][4] == ("d0", "d1", "d2", "d3")
    p = np.array([0.9 if verdict else 0.1 for _, _, verdict in F1_ROWS])
    report = grader_report(cases, p)
    a, b, h = (report["per_category"][name] for name in (EMERGENT, NON_EMERGENT, HEDGING))
    # judge pairs (judge verdict, each physician's label) as [TP, FP, FN, TN]:
    # emergent: row 0 -> TP 2, FP 1; row 1 -> TN 2. F1 met 4/5, F1 unmet 4/5
    assert a["judge_f1"] == pytest.approx(0.8, abs=1e-9)
    # non-emergent: row 2 -> FN 1, TN 1; row 3 -> TP 1; row 5 -> TP 1, FP 1: [2, 1, 1, 1]
    # F1 met 2*2/(4+1+1) = 2/3, F1 unmet 2/(2+1+1) = 1/2
    assert b["judge_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-9)
    # hedging: row 4 -> FN 3, TN 1; the judge never said met: no F1 of met, no macro F1
    assert np.isnan(h["judge_f1"])
    # overall, pooled: [4, 2, 4, 4]: F1 met 8/14, F1 unmet 8/14
    assert report["judge_f1"] == pytest.approx(4 / 7, abs=1e-9)
    # physicians, leave-one-out. emergent: d0 [1, 1, 0, 1] (F1 2/3 and 2/3, n 4), d1 the same,
    # d2 [0, 0, 2, 0] (never said met: none) -> weighted mean 2/3
    assert (a["physician_f1"], a["physicians"]) == (pytest.approx(2 / 3, abs=1e-9), 2)
    # non-emergent: d1 [0, 1, 1, 0] and d2 [0, 1, 1, 0] -> 0 each (n 4); d0 alone on row 3: no pair
    assert (b["physician_f1"], b["physicians"]) == (pytest.approx(0.0, abs=1e-9), 2)
    # hedging: d0 [0, 0, 3, 0], d1..d3 [2, 1, 0, 0]: nobody has both F1s
    assert np.isnan(h["physician_f1"]) and h["physicians"] == 0
    # overall: each physician pooled. d0 [1, 1, 3, 1]: 1/3, n 10; d1 [3, 3, 1, 1]: (3/5 + 1/3)/2, n 12;
    # d2 [2, 2, 3, 0]: (4/9 + 0)/2, n 12; d3 [2, 1, 0, 0]: none
    overall = (10 * 1 / 3 + 12 * 7 / 15 + 12 * 2 / 9) / 34
    assert overall == pytest.approx(29 / 85, abs=1e-12)
    assert (report["physician_f1"], report["physicians"]) == (pytest.approx(29 / 85, abs=1e-9), 3)
    # theme "emergency": judge (6 * 4/5 + 7 * 7/12) / 13 (weights n = TP + TN + 2 (FP + FN));
    # physicians (4 * 2/3 + 4 * 2/3 + 4 * 0 + 4 * 0) / 16
    emergency = report["per_theme"]["emergency"]
    assert emergency["judge_f1"] == pytest.approx(41 / 60, abs=1e-9)
    assert emergency["physician_f1"] == pytest.approx(1 / 3, abs=1e-9)
    assert (emergency["rows"], emergency["physicians"]) == (5, 4)
    assert list(report["per_theme"]) == ["emergency", "hedging"]


def test_macro_f1_matches_its_definition_over_enumerated_pairs(tmp_path):
    from g2r_judge.evaluation import grader_report

    cases = load_verdicts(f1_meta_eval_file(tmp_path), ties="keep")
    p = np.array([0.9 if verdict else 0.1 for _, _, verdict in F1_ROWS])

    def f1(pairs, positive):
        said = [o for s, o in pairs if s == positive]
        truth = [s for s, o in pairs if o == positive]
        precision, recall = np.mean([o == positive for o in said]), np.mean([s == positive for s in truth])
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    pairs = [(pi > 0.5, label) for c, pi in zip(cases, p) for label in c.grader_labels]
    expected = (f1(pairs, True) + f1(pairs, False)) / 2
    assert grader_report(cases, p)["judge_f1"] == pytest.approx(expected, abs=1e-9)


def test_judge_eval_prints_the_macro_f1_beside_kappa(tmp_path, tiny_model, capsys):
    from g2r_cli.judge import main

    path = f1_meta_eval_file(tmp_path)
    out = tmp_path / "report.json"
    argv = ["eval", "--judge", tiny_model, "--tasks", "--cases", str(path), "--methods", "--device", "cpu"]
    assert main([*argv, "--json-out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "macro F1: judge" in text and "per theme" in text
    graders = json.loads(out.read_text())["sets"][str(path)]["graders"]
    assert graders["physician_f1"] == pytest.approx(29 / 85, abs=1e-9)  # the physicians' figure needs no judge
    line = next(row for row in text.splitlines() if row.strip().startswith("all "))
    assert line.split()[-1] == f"{29 / 85:.3f}"


def test_written_verdicts_keep_their_graders(tmp_path):
    from g2r_judge.verdicts import write_verdicts

    cases = load_verdicts(f1_meta_eval_file(tmp_path), ties="keep")
    back = load_verdicts(write_verdicts(tmp_path / "written.jsonl", cases), ties="keep")
    assert [(c.label, c.agreement, c.grader_labels, c.grader_ids, c.domain) for c in back] == [
        (c.label, c.agreement, c.grader_labels, c.grader_ids, c.domain) for c in cases
    ]
    with pytest.warns(UserWarning, match=r"2 row\(s\) have a tied grader vote"):  # rows 2 and 5
        assert len(load_verdicts(tmp_path / "written.jsonl")) == len(cases) - 2
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [{"prompt": "q", "response": "r", "criterion": "c", "label": False, "grader_labels": [True, True, False]}],
    )
    with pytest.raises(VerdictFormatError, match=rf"^{bad}:1: label False is not the majority"):
        load_verdicts(bad)
