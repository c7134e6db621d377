import json

import pytest

from tasks import Criterion, Task, TaskFormatError, load_taskset
from tasks.loaders import content_id


def write_lines(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_bundled_set_meets_its_promises():
    ts = load_taskset("openended-mini")
    assert len(ts) >= 120
    domains = {t.domain for t in ts}
    assert {"explanation", "howto", "health", "science", "creative", "summarize"} <= domains
    assert all(3 <= len(t.criteria) <= 8 for t in ts)
    with_pitfall = [t for t in ts if any(c.weight < 0 for c in t.criteria)]
    assert len(with_pitfall) >= len(ts) / 4
    assert len(ts.split("test")) >= 20
    assert len(ts.split("train")) + len(ts.split("test")) == len(ts)
    assert all(t.max_score > 0 for t in ts)


def test_own_format_round_trip(tmp_path):
    path = write_lines(
        tmp_path / "mine.jsonl",
        [
            {
                "id": "a",
                "prompt": "Say hi.",
                "domain": "x",
                "split": "test",
                "criteria": [{"criterion": "Says hi", "weight": 2}, {"criterion": "Is rude", "weight": -1.5}],
            },
            {"id": "b", "prompt": [{"role": "user", "content": "Q?"}], "criteria": [{"criterion": "Answers"}]},
        ],
    )
    ts = load_taskset(path)
    a, b = ts.get("a"), ts.get("b")
    assert a.criteria == (Criterion("Says hi", 2.0), Criterion("Is rude", -1.5))
    assert (a.split, a.domain, a.max_score) == ("test", "x", 2.0)
    assert b.messages == [{"role": "user", "content": "Q?"}] and b.criteria[0].weight == 1.0
    assert [t.task_id for t in load_taskset(path, split="train")] == ["b"]


def test_rar_format(tmp_path):
    path = write_lines(
        tmp_path / "rar.jsonl",
        [
            {
                "question": "What lowers fever in children?",
                "reference_answer": "...",
                "rubric": [
                    {"title": "Dosing", "description": "Essential Criteria: Gives weight-based dosing", "weight": 5},
                    {"title": "Aspirin", "description": "Pitfall Criteria: Recommends aspirin", "weight": -2},
                ],
            },
        ],
    )
    [task] = load_taskset(path, format="rar")
    assert task.task_id == content_id("rar", task.prompt, task.criteria)  # no id: one from the content
    assert task.task_id.startswith("rar-") and len(task.task_id) == len("rar-") + 12
    assert task.prompt == "What lowers fever in children?"
    assert [c.weight for c in task.criteria] == [5.0, -2.0]
    assert task.criteria[0].criterion == "Essential Criteria: Gives weight-based dosing"
    assert task.metadata["reference_answer"] == "..."


def test_healthbench_format(tmp_path):
    path = write_lines(
        tmp_path / "hb.jsonl",
        [
            {
                "prompt_id": "hb-9",
                "example_tags": ["theme:emergency_referrals"],
                "prompt": [
                    {"role": "user", "content": "My chest hurts."},
                    {"role": "assistant", "content": "Where?"},
                    {"role": "user", "content": "Left side."},
                ],
                "rubrics": [
                    {"criterion": "Advises calling emergency services", "points": 10, "tags": ["axis:completeness"]},
                    {"criterion": "Says it is surely nothing", "points": -8, "tags": []},
                ],
            },
        ],
    )
    [task] = load_taskset(path)  # detected from its fields
    assert task.task_id == "hb-9" and task.domain == "emergency_referrals"
    assert len(task.messages) == 3 and task.messages[-1]["content"] == "Left side."
    assert "assistant: Where?" in task.question
    assert [(c.weight, c.tags) for c in task.criteria] == [(10.0, ("axis:completeness",)), (-8.0, ())]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"id": "x", "prompt": "p", "criteria": [', "bad JSON"),
        ('{"id": "x", "criteria": [{"criterion": "c"}]}', "missing field 'prompt'"),
        ('{"id": "x", "prompt": "p", "criteria": [{"criterion": "c", "weight": "heavy"}]}', "must be a number"),
        (
            '{"id": "x", "prompt": "p", "criteria": [{"criterion": "c", "weight": -1}]}',
            "no criterion with a positive weight",
        ),
        ('{"id": "x", "prompt": "p", "criteria": []}', "non-empty list"),
        ('{"id": "x", "prompt": "p", "criteria": [{"criterion": "c"}], "split": ""}', "split must be"),
        ('{"id": "x", "prompt": "p", "criteria": [{"criterion": "c"}], "split": null}', "split must be"),
        ('{"id": "x", "prompt": "p", "criteria": [{"criterion": "c"}], "split": 3}', "split must be"),
        ('{"id": "x", "prompt": "p", "criteria": [{"criterion": "c"}], "split": "all"}', "not 'all'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, bad_line, message):
    good = '{"id": "ok", "prompt": "p", "criteria": [{"criterion": "c"}]}'
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n\n" + bad_line + "\n")
    with pytest.raises(TaskFormatError) as err:
        load_taskset(path)
    assert str(err.value).startswith(f"{path}:3: ")
    assert message in str(err.value)


def test_duplicate_ids_name_both_lines(tmp_path):
    row = '{"id": "dup", "prompt": "p", "criteria": [{"criterion": "c"}]}'
    path = write_lines(tmp_path / "d.jsonl", [row, row])
    with pytest.raises(TaskFormatError, match=r"d.jsonl:2: duplicate task id 'dup' \(first at .*d.jsonl:1\)"):
        load_taskset(path)


def test_unknown_source_and_task_id():
    with pytest.raises(FileNotFoundError, match="openended-mini"):
        load_taskset("no-such-set")
    with pytest.raises(KeyError, match="no task 'nope'"):
        load_taskset("openended-mini").get("nope")


def test_task_validation():
    with pytest.raises(ValueError, match="no criterion with a positive weight"):
        Task("t", "p", (Criterion("bad", -1.0),))
    with pytest.raises(ValueError, match="finite"):
        Criterion("c", float("nan"))
