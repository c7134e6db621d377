import json

import pytest

pytest.importorskip("pyarrow")

import pyarrow.parquet as pq  # noqa: E402

from agents.verl.data import read_verl_parquet, task_from_json, write_verl_parquet  # noqa: E402
from g2r_cli import main  # noqa: E402
from tasks import Criterion, Task, TaskSet, load_taskset  # noqa: E402


def same_tasks(got, want):
    assert [t.task_id for t in got] == [t.task_id for t in want]
    for a, b in zip(got, want):
        assert a == b  # prompt, criteria (text, weight, tags), split, domain
        assert a.metadata == b.metadata


def test_bundled_set_round_trips_through_verl_parquet(tmp_path):
    tasks = load_taskset("openended-mini")
    written = write_verl_parquet(tasks, tmp_path)
    assert sorted(written) == ["test", "train"]
    same_tasks(read_verl_parquet(written["train"]), tasks.split("train"))
    same_tasks(read_verl_parquet(written["test"]), tasks.split("test"))
    row = pq.read_table(written["test"]).slice(0, 1).to_pylist()[0]
    task = tasks.split("test")[0]
    assert row["data_source"] == "grad2reward:openended-mini"
    assert row["prompt"] == [{"role": "user", "content": task.prompt}]  # verl applies the chat template
    assert row["ability"] == task.domain
    assert row["reward_model"]["style"] == "rubric"
    assert row["extra_info"] == {"index": 0, "task_id": task.task_id, "split": "test", "domain": task.domain}


def test_own_rar_and_healthbench_files_round_trip(tmp_path):
    own = tmp_path / "own.jsonl"
    own.write_text(
        json.dumps(
            {
                "id": "chat-1",
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Name a fruit."},
                    {"role": "assistant", "content": "Apple."},
                    {"role": "user", "content": "Another, in ünïcode?"},
                ],
                "criteria": [
                    {"criterion": "Names a fruit", "weight": 2.5, "tags": ["axis:accuracy", "level:1"]},
                    {"criterion": "Repeats apple", "weight": -1},
                ],
                "split": "test",
                "domain": "food",
                "source": {"author": "me", "year": 2026},
                "difficulty": [1, 2],
            }
        )
        + "\n"
    )
    rar = tmp_path / "rar.jsonl"
    rar.write_text(
        json.dumps(
            {
                "question": "Why is the sea salty?",
                "reference_answer": "Rivers carry dissolved minerals.",
                "rubric": [{"title": "Rivers", "description": "Mentions rivers", "weight": 5}],
            }
        )
        + "\n"
    )
    health = tmp_path / "hb.jsonl"
    health.write_text(
        json.dumps(
            {
                "prompt_id": "hb-1",
                "prompt": [{"role": "user", "content": "My head hurts."}],
                "rubrics": [
                    {"criterion": "Asks how long", "points": 3, "tags": ["axis:completeness"]},
                    {"criterion": "Prescribes opioids", "points": -8, "tags": []},
                ],
                "example_tags": ["theme:emergency_referrals"],
            }
        )
        + "\n"
    )
    for path in (own, rar, health):
        tasks = load_taskset(path)
        written = write_verl_parquet(tasks, tmp_path / path.stem, splits=("all",))
        back = read_verl_parquet(written["all"])
        same_tasks(back, tasks)
    assert read_verl_parquet(tmp_path / "own" / "all.parquet")[0].metadata == {
        "source": {"author": "me", "year": 2026},
        "difficulty": [1, 2],
    }


def test_tasks_that_would_not_come_back_the_same_are_refused_at_export(tmp_path):
    def task(**kwargs):
        return Task("x-1", "Say hi.", (Criterion("Says hi", 1.0),), **kwargs)

    with pytest.raises(ValueError, match="task x-1: its metadata cannot be written as JSON"):
        write_verl_parquet(TaskSet([task(metadata={"when": object()})]), tmp_path)
    with pytest.raises(ValueError, match=r"task x-1: metadata keys \['domain'\] clash with task fields"):
        write_verl_parquet(TaskSet([task(metadata={"domain": "other"})]), tmp_path)
    with pytest.raises(ValueError, match="cannot export task x-1: .*split must be a non-empty name"):
        write_verl_parquet(TaskSet([task(split="all")]), tmp_path, splits=("all",))
    with pytest.raises(ValueError, match=r"has no task in splits \['test'\] \(splits present: \['train'\]\)"):
        write_verl_parquet(TaskSet([task()]), tmp_path, splits=("test",))
    assert not list(tmp_path.iterdir())  # nothing half-written
    with pytest.raises(ValueError, match="row 3: reward_model.ground_truth is not a Grad2Reward task as JSON"):
        task_from_json("{not json", "row 3")


def test_export_command_writes_the_splits(tmp_path, capsys):
    assert main(["export", "--format", "verl", "--tasks", "openended-mini", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'train.parquet'} (102 tasks, split train)" in out
    assert f"wrote {tmp_path / 'test.parquet'} (24 tasks, split test)" in out
    assert len(read_verl_parquet(tmp_path / "test.parquet")) == 24


def test_to_hf_dataset_has_trl_conversational_prompts_and_the_task_as_json():
    pytest.importorskip("datasets")
    from tasks import to_hf_dataset
    from tasks.export import task_from_json

    tasks = load_taskset("openended-mini")
    dataset = to_hf_dataset(tasks, "test")
    assert dataset.column_names == ["prompt", "task"]
    assert len(dataset) == 24
    for row, task in zip(dataset, tasks.split("test")):
        assert row["prompt"] == [{"role": "user", "content": task.prompt}]  # TRL applies the chat template
        same_tasks([task_from_json(row["task"])], [task])
    with pytest.raises(ValueError, match="has no task in split 'val'"):
        to_hf_dataset(tasks, "val")


def test_export_trl_writes_parquet_that_datasets_loads_back(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    from tasks.export import task_from_json

    assert main(["export", "--format", "trl", "--tasks", "openended-mini", "--out", str(tmp_path)]) == 0
    assert f"wrote {tmp_path / 'test.parquet'} (24 tasks, split test)" in capsys.readouterr().out
    loaded = datasets.load_dataset(
        "parquet", data_files={"test": str(tmp_path / "test.parquet")}, cache_dir=str(tmp_path / "cache")
    )["test"]
    want = load_taskset("openended-mini").split("test")
    assert loaded[0]["prompt"] == want[0].messages
    same_tasks([task_from_json(text) for text in loaded["task"]], want)
