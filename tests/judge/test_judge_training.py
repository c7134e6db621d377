"""The evidence corpus, the composer, verdict files, judge fine-tuning and judge evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny import build_tiny_model, verdict_judge_config

from g2r_env import Judge
from g2r_judge.cases import JudgedCase, task_for_prompt
from g2r_judge.compose import Composer
from g2r_judge.corpus import CorpusFormatError, corpus_of, load_corpus
from g2r_judge.evaluation import calibration_error, evidence_mask, roc_auc, verdict_report
from g2r_judge.predict import predict_p_true
from g2r_judge.training import JudgeTrainer
from g2r_judge.verdicts import VerdictFormatError, load_verdicts, write_verdicts
from tasks import load_taskset
from tasks.checks import Check


@pytest.fixture(scope="module")
def corpus():
    return corpus_of("openended-mini")


# ---- corpus ------------------------------------------------------------------------------------
def test_the_bundled_corpus_covers_every_criterion_it_can(corpus):
    counts = corpus.counts()
    assert len(corpus) == 126 and counts["untestable"] < 0.05 * sum(
        counts[k] for k in ("content", "pitfall", "structure", "untestable")
    )
    for entry in corpus:
        assert len(entry.distractors) >= 6
        for c in entry.criteria:
            if c.kind in ("content", "pitfall"):
                assert len(c.evidence) >= 3, (entry.task.task_id, c.criterion)
            if c.kind == "pitfall":
                assert c.weight < 0
    extra = corpus_of("judge-extra")
    splits = [e.task.split for e in extra]
    # 2 tasks of each of the 6 domains are held out for calibration ("val"), never trained on
    assert len(extra) == 48 and splits.count("train") == 36 and splits.count("val") == 12
    assert {e.task.domain for e in extra.split("val")} == {e.task.domain for e in extra}


def test_checks_decide_structure_by_construction():
    letter = "Dear Ms. Rao,\n\nThank you for the lift.\nWill you come again?\n\nLove,\nMia"
    assert Check("greeting")(letter) and Check("sign_off")(letter) and Check("question")(letter)
    assert Check("words", "lt", 15)(letter) and not Check("words", "lt", 14)(letter)  # 14 words
    assert Check("numbered_list")("1. a\n2. b") and not Check("numbered_list")("- a\n- b")
    assert Check("items", "eq", 3)("- a\n- b\n- c") and Check("sentences", "eq", 2)("One, e.g. this. Two.")
    assert Check("contains", text="busy")("A Busy day") and not Check("contains", text="busy")("busybody")
    assert Check("title")("First Snow\n\nIt fell.") and not Check("title")("It fell.\nMore.")
    assert Check("digits", negate=True)("no numbers here")


def test_corpus_errors_name_file_and_line(tmp_path):
    tasks = load_taskset("openended-mini")
    good = {"task": "expl-001", "criteria": [], "distractors": ["x"] * 6}
    cases = [
        ("{", "bad JSON"),
        (json.dumps({**good, "task": "nope"}), "'task' must name a task"),
        (json.dumps(good), "must list the 5 criteria of expl-001"),
    ]
    for line, message in cases:
        path = tmp_path / "e.jsonl"
        path.write_text("\n" + line + "\n")
        with pytest.raises(CorpusFormatError, match=f"{path}:2: .*{message}"):
            load_corpus(path, tasks)
    row = json.loads((tasks_folder_file("explanation")).read_text().splitlines()[0])
    row["criteria"][0]["evidence"] = row["criteria"][0]["evidence"][:2]
    path = tmp_path / "few.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(CorpusFormatError, match=f"{path}:1: criterion 0: a content criterion needs at least 3"):
        load_corpus(path, tasks)
    row = json.loads((tasks_folder_file("explanation")).read_text().splitlines()[0])
    row["criteria"][3]["check"] = {"type": "words", "under": 150}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(CorpusFormatError, match="needs exactly one of"):
        load_corpus(path, tasks)


def tasks_folder_file(domain: str):
    from g2r_judge.corpus import tasks_folder

    return tasks_folder("openended-mini") / "evidence" / f"{domain}.jsonl"


# ---- composer ----------------------------------------------------------------------------------
HARD = dict(
    generic_per_response=3, near_miss_rate=0.4, claims_per_response=2, varied=True, max_words=190, spelled_counts=0.3
)


@pytest.mark.parametrize("options", [{}, HARD], ids=["plain", "hard-negatives-and-varied"])
def test_composed_verdicts_and_spans_are_exact(corpus, options):
    composer = Composer(corpus, seed=7, wordings=2, **options)
    cases = composer.examples(corpus.split("train")[:40], 6)
    expected = {"", "in-task", "mismatched"} | ({"near-miss", "claim", "generic"} if options else set())
    assert {c.negative for c in cases} == expected
    by_group: dict[str, list[JudgedCase]] = {}
    for case in cases:
        by_group.setdefault(case.group, []).append(case)
    checked = 0
    for group in by_group.values():
        entry = corpus.entries[group[0].task.task_id]
        text = group[0].response
        for case in group:
            if case.negative == "mismatched":
                assert not case.label
                continue
            c = next((c for c in entry.criteria if case.criterion in (c.criterion, *c.paraphrases)), None)
            if c is None:  # a generic structure criterion (asked, or claimed and asked): its check decides
                assert case.kind == "structure" and case.label == case.check(text)
                continue
            if c.kind == "structure":
                assert case.label == c.check(text)
                continue
            passages = [
                p.text
                for e in corpus.entries.values()
                if e is entry
                for k in e.criteria
                for p in k.evidence
                if c.index in p.meets
            ]
            spans = [text[a:b] for a, b in case.evidence]
            assert all(span in passages for span in spans)
            if c.place == "any":
                assert case.label == any(p in text for p in passages)
            assert case.label == bool(spans)
            checked += 1
    assert checked > 500


def test_claims_and_near_misses_are_unmet_and_say_what_they_should(corpus):
    """A claimed criterion is unmet and its response holds a sentence restating it; a hinted near miss names
    the criterion's topic words without any passage that meets it; varied responses stay under the word cap."""
    from g2r_judge.compose import content_words, number_words
    from tasks.checks import count_words

    composer = Composer(corpus, seed=5, **HARD)
    cases = composer.examples(corpus.split("train")[:30], 4)
    claims = [c for c in cases if c.negative == "claim"]
    near = [c for c in cases if c.negative == "near-miss"]
    assert len(claims) > 40 and len(near) > 20 and not any(c.label for c in claims + near)
    for case in claims:
        entry = corpus.entries[case.task.task_id]
        own = next((k for k in entry.criteria if case.criterion in (k.criterion, *k.paraphrases)), None)
        wordings = [case.criterion] if own is None else [own.criterion, *own.paraphrases]
        lowered = case.response.lower()
        assert any(w.strip().rstrip(".")[1:].lower() in lowered for w in wordings) or own is None
    for case in near:
        entry = corpus.entries[case.task.task_id]
        own = next(k for k in entry.criteria if case.criterion in (k.criterion, *k.paraphrases))
        assert not any(p.text in case.response for p in own.evidence)
        if own.kind == "content":
            assert any(w in case.response.lower() for w in content_words(own.criterion))
    assert max(count_words(c.response) for c in cases) < 260  # body capped at 190 words, plus layout and material
    assert (
        number_words(7) == "seven" and number_words(45) == "forty-five" and number_words(150) == "one hundred and fifty"
    )


def test_the_composer_is_seeded_and_halves_are_disjoint(corpus):
    entries = corpus.split("train")[:10]
    first = [(c.response, c.criterion, c.label) for c in Composer(corpus, seed=3).examples(entries, 3)]
    again = [(c.response, c.criterion, c.label) for c in Composer(corpus, seed=3).examples(entries, 3)]
    assert first == again
    halves = [
        {c.response for c in Composer(corpus, seed=s, passage_half=h).examples(entries, 20)}
        for s, h in ((1, 0), (1, 1))
    ]
    passages = [{p.text for e in entries for c in e.criteria for p in c.evidence[h::2]} for h in (0, 1)]
    for responses, other in ((halves[0], passages[1]), (halves[1], passages[0])):
        assert not any(p in r for r in responses for p in other if len(p) > 30 and p not in passages[0] & passages[1])


# ---- verdict files -----------------------------------------------------------------------------
def test_verdict_files_round_trip_and_errors_name_the_line(tmp_path):
    rows = [
        {
            "prompt": "Name a colour.",
            "response": "Blue, like the sky.",
            "criterion": "Names a colour",
            "label": True,
            "evidence": ["Blue"],
        },
        {
            "prompt": [{"role": "user", "content": "Hi"}],
            "response": "Hello!",
            "criteria": [{"criterion": "Greets", "met": 1}, {"criterion": "Is rude", "met": 0, "weight": -2}],
        },
    ]
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cases = load_verdicts(path)
    assert [(c.criterion, c.label, c.evidence) for c in cases] == [
        ("Names a colour", True, ((0, 4),)),
        ("Greets", True, ()),
        ("Is rude", False, ()),
    ]
    again = load_verdicts(write_verdicts(tmp_path / "out.jsonl", cases))
    assert [(c.criterion, c.label, c.evidence, c.response) for c in again] == [
        (c.criterion, c.label, c.evidence, c.response) for c in cases
    ]
    for bad, message in [
        ({**rows[0], "label": "yes"}, "true/false"),
        ({**rows[0], "evidence": ["Red"]}, "does not occur"),
        ({"prompt": "p", "criterion": "c", "label": True}, "missing field 'response'"),
    ]:
        path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(VerdictFormatError, match=f"{path}:2: .*{message}"):
            load_verdicts(path)


# ---- metrics -----------------------------------------------------------------------------------
def test_auc_calibration_and_evidence_masks_by_hand():
    assert roc_auc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5  # a tie counts half
    assert roc_auc([0.2, 0.9, 0.4], [True, False, False]) == 0.0
    # bins [0.8, 0.9) holds p 0.8 (label 1) and 0.85 (label 0): |0.825 - 0.5| x 2/3; bin [0.1, 0.2): |0.1 - 0| x 1/3
    assert calibration_error([0.8, 0.85, 0.1], [True, False, False]) == pytest.approx(0.325 * 2 / 3 + 0.1 / 3)
    assert evidence_mask([(0, 4), (4, 8), (8, 12)], [(5, 9)]).tolist() == [False, True, True]
    task = task_for_prompt("q")
    cases = [
        JudgedCase(task, "r", "c", True, "content"),
        JudgedCase(task, "r", "c", False, "content", "in-task"),
        JudgedCase(task, "r", "c", False, "content", "mismatched"),
    ]
    report = verdict_report(cases, np.array([0.9, 0.6, 0.2]))
    assert report["auc"] == 1.0 and report["false_met_rate"] == 0.5
    assert report["in-task"]["false_met_rate"] == 1.0 and report["mismatched"]["false_met_rate"] == 0.0


def test_the_reward_reading_takes_recognised_criteria_from_their_checks(tiny_judge):
    from g2r_judge.evaluation import evaluate_judge, format_report
    from g2r_judge.predict import predict_p_true

    task = task_for_prompt("Give two tips for sleeping well.")
    listed = "1. Keep a schedule.\n2. Skip late coffee."
    cases = [
        JudgedCase(task, listed, "Uses a numbered list", True, "structure"),
        JudgedCase(
            task, "Keep a schedule and skip late coffee.", "Uses a numbered list", False, "structure", "in-task"
        ),
        JudgedCase(task, listed, "Recommends a regular sleep schedule", True, "content"),
        JudgedCase(task, listed, "Warns against alcohol", False, "content", "in-task"),
    ]
    report = evaluate_judge(tiny_judge, cases)
    judged = predict_p_true(tiny_judge, cases)
    expected = verdict_report(cases, np.array([1.0, 0.0, judged[2], judged[3]]))
    assert report["reward_verdicts"] == {"decided_by_code": 2, **expected}
    assert report["reward_verdicts"]["per_kind"]["structure"]["accuracy"] == 1.0
    assert "as the reward reads them (2 criteria decided by code" in format_report(report)
    assert "reward_verdicts" not in evaluate_judge(tiny_judge, cases[2:])  # nothing recognised: no second reading


# ---- training ----------------------------------------------------------------------------------
def test_packed_verdicts_equal_one_pair_at_a_time(bundled_tokenizer):
    judge = Judge(build_tiny_model(len(bundled_tokenizer), dtype=torch.float64), bundled_tokenizer)
    task = task_for_prompt("Why is the sky blue?")
    cases = [
        JudgedCase(task, response, criterion, True)
        for response in ("Air scatters blue light.", "No idea.")
        for criterion in ("Mentions scattering", "Is under 20 words", "Names Rayleigh")
    ]
    packed = predict_p_true(judge, cases)
    for case, p in zip(cases, packed):
        ids, _ = judge.build_input(
            case.task, case.criterion, bundled_tokenizer.encode(case.response, add_special_tokens=False)
        )
        input_ids, mask = judge.pad_batch([ids])
        with torch.no_grad():
            alone = float(judge.p_true(judge.answer_logits(judge.embed(input_ids), mask))[0])
        assert p == pytest.approx(alone, abs=1e-9)


def test_judge_training_lowers_the_loss_and_flips_a_verdict(tiny_model, tmp_path):
    rows = []
    for n, colour in enumerate(["blue", "green", "red", "yellow", "purple", "orange"]):
        rows.append(
            {
                "prompt": "Describe the sea.",
                "response": f"The sea looks {colour} today.",
                "criterion": "Mentions the colour blue",
                "label": colour == "blue",
            }
        )
        rows.append(
            {
                "prompt": "Describe the sea.",
                "response": f"Blue waves and {colour} boats {n}.",
                "criterion": "Mentions the colour blue",
                "label": True,
            }
        )
    path = tmp_path / "toy.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    config = verdict_judge_config(
        tiny_model,
        path,
        tmp_path / "run",
        verdicts_per_step=12,
        steps=40,
        learning_rate=3e-3,
        warmup_steps=0,
        lora_rank=0,
        checkpoint_every=20,
    )
    trainer = JudgeTrainer(config)
    toy = load_verdicts(path)
    held = [c for c in toy if c.response == "The sea looks green today."]
    before = predict_p_true(trainer.judge, held)
    folder = trainer.train()
    after = predict_p_true(trainer.judge, held)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert before[0] > after[0] and after[0] < 0.5  # the unmet example is now called unmet
    assert json.loads((folder / "g2r-judge.json").read_text())["steps"] == 40
    judge = Judge.load(str(folder), device="cpu")  # the written judge loads and judges the same
    np.testing.assert_allclose(predict_p_true(judge, held), after, atol=1e-5)


def test_a_lora_judge_folder_loads_merged_once_and_judges_as_trained(tiny_model, tmp_path, monkeypatch):
    from g2r_env import models

    monkeypatch.setenv("G2R_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "toy.jsonl"
    rows = [
        {"prompt": "Q", "response": f"Answer {n}.", "criterion": "Gives an answer", "label": n % 2 == 0}
        for n in range(8)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    config = verdict_judge_config(
        tiny_model,
        path,
        tmp_path / "run",
        verdicts_per_step=8,
        steps=3,
        learning_rate=1e-2,
        lora_rank=2,
        lora_dropout=0.0,
    )
    trainer = JudgeTrainer(config)
    folder = trainer.train()
    assert models.adapter_base(folder) == tiny_model
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_model
    cases = load_verdicts(path)
    trainer.model.eval()
    expected = predict_p_true(trainer.judge, cases)
    first = predict_p_true(Judge.load(str(folder), device="cpu"), cases)
    merged = list((tmp_path / "cache").glob("merged-*"))
    assert len(merged) == 1 and models._cache_is_complete(merged[0])
    np.testing.assert_allclose(first, expected, atol=2e-3)  # the adapter was saved in float16
    stamp = (merged[0] / "model.safetensors").stat().st_mtime_ns
    (folder / "eval.json").write_text("{}")  # a measurement beside the adapter leaves its weights as they are
    models.load_model(str(folder), "cpu")
    assert (merged[0] / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not merged again
    assert list((tmp_path / "cache").glob("merged-*")) == merged


def test_generic_structure_criteria_are_decided_by_their_checks():
    import random

    from g2r_judge.compose import generic_structure
    from tasks.checks import COMPARISONS, count_words

    text = "Rest well.\n\n1. Drink water, about 2 litres.\n2. Sleep early.\n3. Walk daily.\n\nWill you try it?"
    rng = random.Random(0)
    seen, labels = set(), []
    for _ in range(300):
        criterion, check = generic_structure(text, ["zebra", "lantern"], rng)
        seen.add(check.type)
        labels.append(check(text))
        if check.type == "words":
            assert str(check.value) in criterion and check(text) == COMPARISONS[check.op](
                count_words(text), check.value
            )
        if check.type == "numbered_list":
            assert check(text)
        if check.type == "contains" and check.text in ("zebra", "lantern"):
            assert check(text) == check.negate
    assert {"words", "sentences", "items", "numbered_list", "contains", "question"} <= seen
    assert 0.3 < np.mean(labels) < 0.8  # both verdicts, by construction


def test_generic_material_keeps_the_evidence_spans_on_their_passages(corpus):
    composer = Composer(corpus, seed=11, generic_per_response=3)
    cases = composer.examples(corpus.split("train")[:30], 4)
    generic = [c for c in cases if c.negative == "generic" or (c.kind == "structure" and c.label and not c.evidence)]
    assert generic
    for case in cases:
        for a, b in case.evidence:
            entry = corpus.entries[case.task.task_id]
            texts = {p.text for c in entry.criteria for p in c.evidence}
            assert case.response[a:b] in texts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bundled-judge", "bundled-eval-judge"])
def test_the_shipped_judge_reproduces_its_recorded_measurement(name):
    """A shipped judge, loaded as users load it, gives on the independent judged cases the AUC and
    accuracy recorded beside it (eval.json, written by scripts/build_judges.sh), and beats chance."""
    from pathlib import Path

    from g2r_judge.evaluation import evaluate_judge

    root = Path(__file__).resolve().parents[2]
    cases_file = "benchmarks/data/judged_cases.jsonl"
    recorded = json.loads((root / "g2r_env/judges" / name / "eval.json").read_text())
    recorded = recorded["sets"][cases_file]["verdicts"]
    cases = load_verdicts(root / cases_file)
    report = evaluate_judge(Judge.load(name, device="cpu"), cases)["verdicts"]
    assert report["n"] == recorded["n"] == len(cases)
    assert report["auc"] == pytest.approx(recorded["auc"], abs=0.01)
    assert report["accuracy"] == pytest.approx(recorded["accuracy"], abs=0.02)
    assert report["auc"] > 0.65  # the base model judging itself: 0.50 on these cases
