"""Rubric data as users download it: RaR parquet folders, HealthBench JSONL, HealthBench meta-evaluation
rows as tasks, ``datasets`` objects; splits, ids and tag filters.

Every fixture is written by the test in the real schema (a few rows each)."""

import pytest
from rows import healthbench_row, rar_row, write_jsonl, write_parquet

from tasks import TaskFormatError, load_taskset
from tasks.loaders import content_id


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
