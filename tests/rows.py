"""Rows in the real schemas users download (RaR, HealthBench, HealthBench meta-evaluation), and
writers for JSONL and parquet files of them."""

import json

import pyarrow as pa
import pyarrow.parquet as pq


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
