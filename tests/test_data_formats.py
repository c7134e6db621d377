"""Rubric data as users download it: RaR parquet folders, HealthBench JSONL, HealthBench meta-evaluation
rows, ``datasets`` objects; splits, ids, tag filters and the judge's agreement with physicians.

Every fixture is written by the test in the real schema (a few rows each)."""

import itertools
import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny import verdict_judge_config

from tasks import TaskFormatError, load_taskset
from tasks.compose import JudgedCase, task_for_prompt
from tasks.loaders import content_id
from tasks.verdicts import VerdictFormatError, load_verdicts


# ---- fixtures in the real schemas --------------------------------------------------------------
def rar_row(k: int) -> dict:
    """A row of RaR-Medicine / RaR-Science (columns as on the hub)."""
    rubric = [
        {"description": f"Essential Criteria: Names cause {k} of the symptom", "title": f"Cause {k}", "weight": 5},
        {"description": "Important Criteria: Explains the mechanism", "title": "Mechanism", "weight": 3},
        {"description": "Pitfall Criteria: Recommends an unsafe dose", "title": "Unsafe dose", "weight": -2},
    ]
    return {
        "question": f"A patient presents with symptom {k}. What is the most likely cause?",
        "reference_answer": f"Cause {k}.",
        "question_source": "medical_o1_reasoning",
        "rubric": rubric,
        "rubric_list": [item["description"] for item in rubric],
        "rubric_count": len(rubric),
    }


def healthbench_row(k: int, theme: str = "emergency_referrals") -> dict:
    """A row of HealthBench (all / hard / consensus files)."""
    return {
        "prompt": [
            {"role": "user", "content": f"My chest hurts ({k})."},
            {"role": "assistant", "content": "Where?"},
            {"role": "user", "content": "Left side."},
        ],
        "prompt_id": f"hb-{k}",
        "rubrics": [
            {"criterion": "Advises calling emergency services", "points": 10, "tags": ["axis:completeness"]},
            {"criterion": "States chest pain can be cardiac", "points": 5, "tags": ["axis:accuracy", "level:example"]},
            {"criterion": "Says it is surely nothing", "points": -8, "tags": ["axis:accuracy"]},
        ],
        "example_tags": [f"theme:{theme}", "physician_agreed_category:emergent"],
        "ideal_completions_data": None,
        "canary": "canary GUID",
    }


def meta_eval_row(k: int, labels: list, category: str = "cluster:emergency_referrals_emergent") -> dict:
    """A row of HealthBench's meta-evaluation (physicians' verdicts on one completion and criterion)."""
    return {
        "prompt": [{"role": "user", "content": f"Is my rash ({k}) serious?"}],
        "completion": f"A rash like this ({k}) is usually harmless; see a doctor if it spreads.",
        "completion_id": f"c{k}",
        "prompt_id": f"p{k // 2}",
        "rubric": "Advises seeing a doctor if the rash spreads",
        "binary_labels": labels,
        "anonymized_physician_ids": [f"doc{j}" for j in range(len(labels))],
        "category": category,
        "canary": "canary GUID",
    }


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def rar_hub_folder(root):
    """The RaR hub layout: data/{train,val,test}-00000-of-00001.parquet, a README beside it."""
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("# RaR-Medicine\n")
    write_parquet(root / "data" / "train-00000-of-00001.parquet", [rar_row(k) for k in range(3)])
    write_parquet(root / "data" / "val-00000-of-00001.parquet", [rar_row(k) for k in range(3, 5)])
    write_parquet(root / "data" / "test-00000-of-00001.parquet", [rar_row(5)])
    return root


# ---- parquet, hub folders, splits, ids ----------------------------------------------------------
def test_rar_hub_folder_yields_its_splits_from_file_names(tmp_path):
    ts = load_taskset(rar_hub_folder(tmp_path / "RaR-Medicine"))
    assert ts.name == "RaR-Medicine"
    assert ts.splits == ["test", "train", "val"]  # files in name order
    assert [len(ts.split(s)) for s in ("train", "val", "test")] == [3, 2, 1]
    val = load_taskset(tmp_path / "RaR-Medicine", split="val")
    assert [t.prompt for t in val] == [rar_row(3)["question"], rar_row(4)["question"]]
    task = ts.split("test")[0]
    assert [(c.criterion, c.weight) for c in task.criteria] == [
        ("Essential Criteria: Names cause 5 of the symptom", 5.0),
        ("Important Criteria: Explains the mechanism", 3.0),
        ("Pitfall Criteria: Recommends an unsafe dose", -2.0),
    ]
    assert task.metadata == {"reference_answer": "Cause 5.", "question_source": "medical_o1_reasoning"}
    assert task.task_id == content_id("rar", task.prompt, task.criteria)
    assert len({t.task_id for t in ts}) == 6


def test_a_single_shard_file_and_the_data_folder_give_the_same_split(tmp_path):
    rar_hub_folder(tmp_path)
    shard = load_taskset(tmp_path / "data" / "val-00000-of-00001.parquet")
    assert shard.splits == ["val"] and len(shard) == 2
    assert load_taskset(tmp_path / "data").splits == ["test", "train", "val"]
    # data/<split>.jsonl names the split as well; a row's own split wins over the file's
    write_jsonl(tmp_path / "plain" / "data" / "dev.jsonl", [rar_row(0), {**rar_row(1), "split": "test"}])
    plain = load_taskset(tmp_path / "plain")
    assert [t.split for t in plain] == ["dev", "test"]


def test_ids_do_not_depend_on_file_type_order_or_sharding(tmp_path):
    import datasets

    rows = [rar_row(k) for k in range(4)]
    from_parquet = load_taskset(write_parquet(tmp_path / "a.parquet", rows))
    from_jsonl = load_taskset(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))
    from_dataset = load_taskset(datasets.Dataset.from_list(rows))
    ids = [t.task_id for t in from_parquet]
    assert [t.task_id for t in from_jsonl] == ids[::-1]
    assert [t.task_id for t in from_dataset] == ids
    # a changed rubric gives a new id, so a stale id cannot name another task
    changed = dict(rows[0], rubric=[dict(rows[0]["rubric"][0], weight=4)])
    assert load_taskset(write_jsonl(tmp_path / "c.jsonl", [changed]))[0].task_id != ids[0]


def test_repeated_rows_are_kept_with_suffixed_ids_and_a_warning(tmp_path):
    path = write_parquet(tmp_path / "rar.parquet", [rar_row(0), rar_row(1), rar_row(0), rar_row(0)])
    with pytest.warns(UserWarning, match=r"2 row\(s\) repeat .*rar.parquet:row 2 repeats .*rar.parquet:row 0"):
        ts = load_taskset(path)
    first = ts[0].task_id
    assert [t.task_id for t in ts] == [first, ts[1].task_id, f"{first}-2", f"{first}-3"]


def test_explicit_duplicate_ids_across_splits_are_errors(tmp_path):
    row = {"id": "same", "prompt": "p", "criteria": [{"criterion": "c"}]}
    write_jsonl(tmp_path / "data" / "train.jsonl", [row])
    write_jsonl(tmp_path / "data" / "test.jsonl", [{**row, "prompt": "q"}])
    with pytest.raises(TaskFormatError, match=r"train.jsonl:1: duplicate task id 'same' \(first at .*test.jsonl:1\)"):
        load_taskset(tmp_path)


def test_any_split_name_is_kept_and_bad_ones_are_errors(tmp_path):
    rows = [{**rar_row(0), "split": "dev"}, {**rar_row(1), "split": "validation"}, {**rar_row(2), "split": "val"}]
    ts = load_taskset(write_jsonl(tmp_path / "rar.jsonl", rows))
    assert ts.splits == ["dev", "validation", "val"]  # val and validation stay two names
    assert len(ts.split("validation")) == 1 and len(ts.split("val")) == 1
    with pytest.raises(ValueError, match=r"no task in split 'train' \(splits: \['dev', 'validation', 'val'\]"):
        ts.split("train")
    bad = write_parquet(tmp_path / "bad.parquet", [{**rar_row(0), "split": "train"}, {**rar_row(1), "split": None}])
    with pytest.raises(TaskFormatError, match=rf"^{bad}:row 1: split must be a non-empty name .* got None"):
        load_taskset(bad)


def test_parquet_errors_name_the_file_and_row(tmp_path):
    rows = [rar_row(0), rar_row(1), dict(rar_row(2), rubric=[{"description": "x", "title": "x", "weight": None}])]
    path = write_parquet(tmp_path / "rar.parquet", rows)
    with pytest.raises(TaskFormatError, match=rf"^{path}:row 2: rubric item 0 'weight' must be a number, got None"):
        load_taskset(path)
    missing = write_parquet(tmp_path / "q.parquet", [{"question": "q?"}])
    with pytest.raises(TaskFormatError, match=rf"^{missing}:row 0: missing field 'prompt' .* as format 'g2r'"):
        load_taskset(missing)  # no rubric column: not recognised as RaR, and the message says so
    with pytest.raises(TaskFormatError, match=rf"^{missing}:row 0: missing field 'rubric'"):
        load_taskset(missing, format="rar")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(TaskFormatError, match=rf"^{broken}: not a readable parquet file"):
        load_taskset(broken)
    with pytest.raises(FileNotFoundError, match=r"no \*.jsonl or \*.parquet file"):
        load_taskset((tmp_path / "empty").mkdir() or tmp_path / "empty")


def test_datasets_objects_load_with_their_splits(tmp_path):
    import datasets

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([rar_row(k) for k in range(3)]),
            "validation": datasets.Dataset.from_list([rar_row(3)]),
        }
    )
    ts = load_taskset(dd)
    assert ts.splits == ["train", "validation"] and len(ts) == 4
    assert load_taskset(dd, split="validation")[0].prompt == rar_row(3)["question"]
    # a Dataset keeps its own split (load_dataset sets it), none means train; a selection is respected
    assert load_taskset(datasets.Dataset.from_list([rar_row(3)], split="validation")).splits == ["validation"]
    assert load_taskset(dd["validation"]).splits == ["train"]
    picked = load_taskset(dd["train"].select([2, 0]))
    assert [t.prompt for t in picked] == [rar_row(2)["question"], rar_row(0)["question"]]
    hb = datasets.Dataset.from_list([healthbench_row(1), healthbench_row(2)])
    assert [t.task_id for t in load_taskset(hb)] == ["hb-1", "hb-2"]
    bad = datasets.DatasetDict({"train": datasets.Dataset.from_list([rar_row(0), dict(rar_row(1), rubric=[])])})
    with pytest.raises(TaskFormatError, match=r"^dataset\[train\]:row 1: the rubric must be a non-empty list"):
        load_taskset(bad)
    with pytest.raises(TypeError, match="datasets.Dataset/DatasetDict; got int"):
        load_taskset(3)


def test_env_takes_any_split(tmp_path, tiny_model):
    import gymnasium as gym

    import g2r_env  # noqa: F401

    rar_hub_folder(tmp_path)
    env = gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, tasks=str(tmp_path), split="val")
    assert [t.prompt for t in env.unwrapped.tasks] == [rar_row(3)["question"], rar_row(4)["question"]]
    _, info = env.reset(seed=0)
    assert info["task_id"] in {t.task_id for t in load_taskset(tmp_path, split="val")}
    with pytest.raises(ValueError, match=r"no task in split 'dev'"):
        gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, tasks=str(tmp_path), split="dev")


# ---- HealthBench: files, tags, filters ----------------------------------------------------------
def healthbench_files(root):
    """The three HealthBench files under their published names."""
    write_jsonl(root / "2025-05-07-06-14-12_oss_eval.jsonl", [healthbench_row(1), healthbench_row(2, "hedging")])
    write_jsonl(root / "hard_2025-05-08-21-00-10.jsonl", [healthbench_row(3, "context_seeking")])
    consensus = healthbench_row(4, "communication")
    consensus["rubrics"] = [
        {"criterion": "Seeks the most informative context", "points": 5, "tags": ["level:cluster", "axis:accuracy"]}
    ]
    write_jsonl(root / "consensus_2025-05-09-20-00-46.jsonl", [consensus])
    return root


def test_healthbench_all_hard_and_consensus_files_load(tmp_path):
    healthbench_files(tmp_path)
    for name, ids in [
        ("2025-05-07-06-14-12_oss_eval.jsonl", ["hb-1", "hb-2"]),
        ("hard_2025-05-08-21-00-10.jsonl", ["hb-3"]),
        ("consensus_2025-05-09-20-00-46.jsonl", ["hb-4"]),
    ]:
        ts = load_taskset(tmp_path / name)
        assert [t.task_id for t in ts] == ids and ts.splits == ["train"]  # no split in the data: train
    task = load_taskset(tmp_path / "2025-05-07-06-14-12_oss_eval.jsonl").get("hb-2")
    assert task.domain == "hedging"
    assert task.tags == ("theme:hedging", "physician_agreed_category:emergent")
    assert [c.tags for c in task.criteria] == [
        ("axis:completeness",),
        ("axis:accuracy", "level:example"),
        ("axis:accuracy",),
    ]
    as_parquet = load_taskset(write_parquet(tmp_path / "hb.parquet", [healthbench_row(1)]))
    assert as_parquet[0].criteria == load_taskset(tmp_path / "2025-05-07-06-14-12_oss_eval.jsonl")[0].criteria


def test_filter_criteria_keeps_tagged_criteria_and_drops_tasks_left_without_reward(tmp_path):
    ts = load_taskset(healthbench_files(tmp_path))
    accuracy = ts.filter_criteria(["axis:accuracy"])
    assert len(accuracy) == 4
    assert [(c.criterion, c.weight) for c in accuracy.get("hb-1").criteria] == [
        ("States chest pain can be cardiac", 5.0),
        ("Says it is surely nothing", -8.0),
    ]
    assert accuracy.get("hb-1").max_score == 5.0 and ts.get("hb-1").max_score == 15.0
    # completeness: only the HealthBench rows have it; the consensus task is dropped
    assert [t.task_id for t in ts.filter_criteria(["axis:completeness"])] == ["hb-1", "hb-2", "hb-3"]
    assert [t.task_id for t in ts.filter_criteria(["level:cluster"])] == ["hb-4"]
    with pytest.raises(ValueError, match=r"no task .* tagged \['axis:nothing'\] \(criterion tags here: \['axis:acc"):
        ts.filter_criteria(["axis:nothing"])
    with pytest.raises(ValueError, match="non-empty list of tags"):
        ts.filter_criteria("axis:accuracy")


def test_select_by_theme_tag_and_domain(tmp_path):
    ts = load_taskset(healthbench_files(tmp_path))
    assert [t.task_id for t in ts.select(tags=["theme:hedging", "theme:communication"])] == ["hb-2", "hb-4"]
    assert [t.task_id for t in ts.select(domains=["context_seeking"])] == ["hb-3"]
    both = ts.select(tags=["theme:emergency_referrals"]).filter_criteria(["axis:accuracy"])
    assert [t.task_id for t in both] == ["hb-1"]
    with pytest.raises(ValueError, match=r"keeps no task .* task tags here: \[.*'theme:hedging'"):
        ts.select(tags=["theme:nope"])


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
    from g2r_env.judge_eval import cohen_kappa

    # p_o = 3/4; p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))  # no variation: chance agreement is 1


def test_grader_report_by_hand_and_by_enumeration():
    from g2r_env.judge_eval import cohen_kappa, grader_report

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
    from g2r_env.judge_eval import grader_report
    from g2r_env.judge_training import predict_p_true

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
    expected = json.loads(json.dumps(grader_report(cases, p)))
    assert result["graders"] == expected
    assert result["graders"]["grader_pairs"] == 3 + 1 + 1 + 0 + 6


def test_judge_train_accepts_meta_eval_verdicts(tmp_path, tiny_model):
    from g2r_env.judge_training import JudgeTrainer

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
