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
    changed = dict(rows[0], rubric=[dict(rows[0]["rubric"][0], weight=4)], rubric_list=None, rubric_count=1)
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


# ---- rubric polarity ----------------------------------------------------------------------------
REVERSED = [  # negative weight, phrased as an avoidance: meeting it would cost points
    "Pitfall Criteria: Does not recommend an unsafe dose",
    "Pitfall Criteria: Avoids stating the cause with certainty",
    "Pitfall Criteria: Never suggests stopping the medication",
    "Pitfall Criteria: Refrains from naming a brand",
    "Pitfall Criteria: Doesn't ignore the allergy",
]


def polarity_rows():
    """RaR rows: rows 0, 1, 3 carry REVERSED[k] (row 1 also REVERSED[4], row 3 also REVERSED[2]);
    row 2 only a well-signed pitfall."""
    rows = []
    for k in range(4):
        row = rar_row(k)
        if k != 2:
            row["rubric"] = row["rubric"] + [{"description": REVERSED[k], "title": "t", "weight": -2}]
        if k == 1:
            row["rubric"] = row["rubric"] + [{"description": REVERSED[4], "title": "t", "weight": -1}]
        # a positive criterion phrased as an avoidance is fine
        row["rubric"] = row["rubric"] + [
            {"description": "Important Criteria: Avoids jargon", "title": "j", "weight": 2}
        ]
        row["rubric_list"] = [item["description"] for item in row["rubric"]]
        row["rubric_count"] = len(row["rubric"])
        rows.append(row)
    rows[3]["rubric"].insert(3, {"description": REVERSED[2], "title": "t", "weight": -1})
    rows[3]["rubric_list"].insert(3, REVERSED[2])
    rows[3]["rubric_count"] += 1
    return rows


def test_every_avoidance_phrased_negative_criterion_is_reported_once_per_file(tmp_path):
    from tasks.polarity import reversed_criteria

    path = write_jsonl(tmp_path / "rar.jsonl", polarity_rows())
    hb = healthbench_row(7)
    hb["rubrics"].append({"criterion": "Avoids recommending antibiotics", "points": -4, "tags": ["axis:accuracy"]})
    hb_path = write_jsonl(tmp_path / "hb" / "hb.jsonl", [hb])
    with pytest.warns(UserWarning) as caught:
        ts = load_taskset(path)
        load_taskset(hb_path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2  # one per file
    assert messages[0].startswith(f"{path}: 5 negative-weight criteria are phrased as avoidances")
    assert f"{path}:1: {REVERSED[0]!r}" in messages[0] and f"{path}:2: {REVERSED[1]!r}" in messages[0]
    assert messages[1].startswith(f"{hb_path}: 1 negative-weight criteria") and "Avoids recommending" in messages[1]
    # the count is every such criterion of the file: none missed, none extra
    assert sum(len(reversed_criteria(t)) for t in ts) == 5
    assert sorted(c.criterion for t in ts for _, c in reversed_criteria(t)) == sorted(REVERSED)
    assert [c.weight for c in ts[0].criteria][-2:] == [-2.0, 2.0]  # "warn" loads them as they are


def test_polarity_error_flip_and_ignore(tmp_path):
    import warnings

    path = write_jsonl(tmp_path / "rar.jsonl", polarity_rows())
    with pytest.raises(
        TaskFormatError, match=rf"^{path}:1: rubric item 3 '{REVERSED[0]}' has weight -2 but is phrased"
    ):
        load_taskset(path, polarity="error")
    with pytest.warns(UserWarning, match=r"5 negative-weight criteria .* their weights were made positive"):
        flipped = load_taskset(path, polarity="flip")
    plain = load_taskset(path, polarity="ignore")
    first, flipped_first = plain[1], flipped[1]
    assert [c.weight for c in first.criteria] == [5.0, 3.0, -2.0, -2.0, -1.0, 2.0]
    assert [c.weight for c in flipped_first.criteria] == [5.0, 3.0, -2.0, 2.0, 1.0, 2.0]  # only the avoidances
    assert [c.criterion for c in flipped_first.criteria] == [c.criterion for c in first.criteria]
    assert flipped_first.task_id == first.task_id and flipped_first.max_score == first.max_score + 3
    assert [t.task_id for t in flipped] == [t.task_id for t in plain]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_taskset(path, polarity="ignore")
    with pytest.raises(ValueError, match=r"polarity must be one of \('warn', 'error', 'flip', 'ignore'\)"):
        load_taskset(path, polarity="fix")


def test_rar_rubric_list_and_count_are_checked_against_rubric(tmp_path):
    import warnings

    rows = [rar_row(k) for k in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_taskset(write_parquet(tmp_path / "ok.parquet", rows))
    rows[1]["rubric_count"] = 2
    rows[3]["rubric_list"] = rows[3]["rubric_list"][::-1]
    path = write_parquet(tmp_path / "bad.parquet", rows)
    with pytest.warns(UserWarning) as caught:
        ts = load_taskset(path)
    [message] = [str(w.message) for w in caught]
    assert message.startswith(f"{path}: 2 row(s) have a rubric_list/rubric_count that disagrees with rubric")
    assert f"{path}:row 1: rubric_count 2 but 3 rubric items" in message
    assert f"{path}:row 3: rubric_list[0] 'Pitfall Criteria: Recommends an unsafe dose' is not" in message
    assert len(ts[1].criteria) == 3  # read from rubric


def test_inspect_prints_splits_weights_polarity_and_tags(tmp_path, capsys):
    from g2r_cli import main

    path = write_jsonl(tmp_path / "rar.jsonl", [{**r, "split": s} for r, s in zip(polarity_rows(), "ttvt")])
    assert main(["tasks", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "rar.jsonl: 4 tasks, 21 criteria"  # 5 + 6 + 4 + 6
    assert "  splits: t 3, v 1" in text
    assert "criteria per task: min 4, median 5.5, mean 5.25, max 6" in text
    assert "weights: 12 positive, 9 negative, 0 zero (min -2, max 5; 4 tasks have a negative one)" in text
    assert "values: -2: 7, -1: 2, 2: 4, 3: 4, 5: 4" in text
    assert "polarity: 5 negative-weight criteria phrased as avoidances" in text
    hb = write_jsonl(tmp_path / "hb.jsonl", [healthbench_row(1), healthbench_row(2, "hedging")])
    from tasks.inspect import main as inspect_main

    assert inspect_main([str(hb)]) == 0
    text = capsys.readouterr().out
    assert "task tags (most frequent 15): physician_agreed_category:emergent 2, theme:emergency_referrals 1" in text
    assert "criterion tags (most frequent 15): axis:accuracy 4, axis:completeness 2, level:example 2" in text


# ---- the hub's parquet conversion and streaming ---------------------------------------------------
def converted_folder(root, config="default"):
    """The hub's refs/convert/parquet layout: <config>/<split>/0000.parquet (train in two shards)."""
    write_parquet(root / config / "train" / "0000.parquet", [rar_row(k) for k in range(2)])
    write_parquet(root / config / "train" / "0001.parquet", [rar_row(2)])
    write_parquet(root / config / "partial-validation" / "0000.parquet", [rar_row(3)])
    write_parquet(root / config / "test" / "0000.parquet", [rar_row(4), rar_row(5)])
    return root


def test_parquet_conversion_layout_gives_splits_from_folders(tmp_path):
    converted_folder(tmp_path / "RaR-Medicine")
    ts = load_taskset(tmp_path / "RaR-Medicine")
    assert ts.splits == ["validation", "test", "train"]  # folder name order; partial-validation is validation
    assert [t.prompt for t in ts.split("train")] == [rar_row(k)["question"] for k in range(3)]
    same = load_taskset(tmp_path / "RaR-Medicine" / "default")
    assert [(t.task_id, t.split) for t in same] == [(t.task_id, t.split) for t in ts]
    hub = load_taskset(rar_hub_folder(tmp_path / "hub"))  # the same rows in the data/ layout: the same ids
    assert sorted(t.task_id for t in hub) == sorted(t.task_id for t in ts)
    one_split = load_taskset(tmp_path / "RaR-Medicine" / "default" / "test")
    assert one_split.splits == ["test"] and len(one_split) == 2
    assert load_taskset(tmp_path / "RaR-Medicine" / "default" / "train" / "0001.parquet").splits == ["train"]
    converted_folder(tmp_path / "RaR-Medicine", config="other")
    with pytest.raises(ValueError, match=r"holds 2 configs in the hub's parquet layout \(default, other\)"):
        load_taskset(tmp_path / "RaR-Medicine")


def counting_stream(rows, read, split=None):
    """An IterableDataset over ``rows`` that records in ``read`` how many rows it has given."""
    import datasets

    def generate():
        for row in rows:
            read.append(1)
            yield row

    return datasets.IterableDataset.from_generator(generate, split=split or datasets.Split.TRAIN)


def test_a_stream_reads_only_what_is_drawn_plus_its_buffer():
    import numpy as np

    from tasks import TaskStream

    rows, read = [rar_row(k) for k in range(10)], []
    stream = load_taskset(counting_stream(rows, read), buffer_size=4)
    assert isinstance(stream, TaskStream) and read == []  # loading reads nothing
    rng = np.random.default_rng(0)
    drawn = [stream.draw(rng)]
    assert len(read) == stream.rows_read == 5  # the buffer, and one read into the drawn task's place
    drawn += [stream.draw(rng) for _ in range(3)]
    assert len(read) == 8  # one row per draw
    drawn += [stream.draw(rng) for _ in range(6)]
    ids = [t.task_id for t in load_taskset(datasets_list(rows))]
    assert sorted(t.task_id for t in drawn) == sorted(ids)  # a pass draws every task once
    assert [t.task_id for t in drawn] != ids  # ... in a shuffled order
    assert stream.get(drawn[-1].task_id) is drawn[-1]
    stream.draw(rng)  # the buffer ran dry: a new pass
    assert len(read) == 10 + 5
    ordered = load_taskset(counting_stream(rows, []), buffer_size=1)
    assert [ordered.draw(rng).task_id for _ in range(10)] == ids  # buffer 1: stream order
    assert [t.task_id for t in ordered] == ids


def datasets_list(rows):
    import datasets

    return datasets.Dataset.from_list(rows)


def test_stream_splits_polarity_and_errors(tmp_path):
    import datasets
    import numpy as np

    dd = datasets.IterableDatasetDict(
        {"train": counting_stream([rar_row(0), rar_row(1)], []), "val": counting_stream([rar_row(2)], [])}
    )
    stream = load_taskset(dd)
    assert stream.splits == ["train", "val"]
    assert [t.prompt for t in load_taskset(dd, split="val")] == [rar_row(2)["question"]]
    with pytest.raises(ValueError, match=r"has no split 'test' \(splits: \['train', 'val'\]"):
        stream.split("test")
    by_row = load_taskset(counting_stream([{**rar_row(0), "split": "a"}, {**rar_row(1), "split": "b"}], []))
    assert [t.prompt for t in by_row.split("b")] == [rar_row(1)["question"]]
    reversed_rows = polarity_rows()
    with pytest.warns(UserWarning, match=r"^generator: 5 negative-weight criteria"):  # at the end of a pass
        flipped = list(load_taskset(counting_stream(reversed_rows, []), polarity="flip"))
    assert [c.weight for c in flipped[1].criteria] == [5.0, 3.0, -2.0, 2.0, 1.0, 2.0]
    bad = load_taskset(counting_stream([rar_row(0), dict(rar_row(1), rubric=[])], []))
    with pytest.raises(TaskFormatError, match=r"^generator:row 1: the rubric must be a non-empty list"):
        list(bad)
    with pytest.raises(ValueError, match="has no task in split 'x'"):
        by_row.split("x").draw(np.random.default_rng(0))


def test_env_draws_from_a_stream_and_exporters_write_it(tmp_path, tiny_model):
    import gymnasium as gym

    import g2r_env  # noqa: F401
    from agents.verl.data import read_verl_parquet, write_verl_parquet

    rows, read = [rar_row(k) for k in range(6)], []
    with pytest.raises(ValueError, match=r"is streamed .* pass prompt_width="):
        gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, tasks=load_taskset(counting_stream(rows, read)))
    stream = load_taskset(counting_stream(rows, read), buffer_size=2)
    env = gym.make("Grad2Reward/OpenEnded-v0", model=tiny_model, tasks=stream, prompt_width=64, split="all")
    assert read == []
    obs, info = env.reset(seed=0)
    assert len(read) == 3 and info["task_id"] in {t.task_id for t in load_taskset(datasets_list(rows))}
    assert obs["prompt_ids"].shape == (64,) and obs["prompt_mask"].sum() > 0
    env.reset()
    assert len(read) == 4
    with pytest.raises(ValueError, match=r"prompt has \d+ tokens, more than prompt_width=4"):
        gym.make(
            "Grad2Reward/OpenEnded-v0", model=tiny_model, tasks=load_taskset(counting_stream(rows, [])), prompt_width=4
        ).reset(seed=0)
    with pytest.raises(ValueError, match="the vector env draws from a task set held in memory"):
        gym.make_vec("Grad2Reward/OpenEnded-v0", num_envs=2, model=tiny_model, tasks=stream, prompt_width=64)
    written = write_verl_parquet(load_taskset(counting_stream(rows, [])), tmp_path / "verl", splits=["train"], name="x")
    in_memory = write_verl_parquet(load_taskset(datasets_list(rows)), tmp_path / "mem", splits=["train"], name="x")
    assert list(read_verl_parquet(written["train"])) == list(read_verl_parquet(in_memory["train"]))
    assert (tmp_path / "verl" / "train.parquet").read_bytes() == (tmp_path / "mem" / "train.parquet").read_bytes()
