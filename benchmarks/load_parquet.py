"""Load time and memory of a 20,000-row RaR-like parquet file through ``load_taskset``.

Writes the file (RaR-Medicine's columns: question, reference_answer, question_source, rubric of
description/title/weight, rubric_list, rubric_count; lengths like the real rows) to a temporary
hub-layout folder in a child process, so that writing leaves nothing in this process's memory;
then loads it once and prints the load time, the rows per second, the resident memory (RSS) the
loaded task set holds (after - before) and the peak RSS during the load above the RSS before it.
Target: under 3 s and a few hundred MB.

    python benchmarks/load_parquet.py [--rows 20000] [--criteria 7]
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks import load_taskset  # noqa: E402

WORDS = (
    "patient presents with acute pain fever history of hypertension diagnosis treatment first line "
    "therapy mechanism contraindicated dose renal hepatic imaging sensitive specific likely cause"
).split()


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def write_file(path: Path, rows: int, criteria: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    records = []
    for k in range(rows):
        rubric = [
            {
                "description": f"Essential Criteria: {sentence(rng, 18)} ({k}.{j})",
                "title": sentence(rng, 3),
                "weight": rng.choice([5, 4, 3, 2, 1, -1, -2]) if j else 5,
            }
            for j in range(criteria)
        ]
        records.append(
            {
                "question": f"{sentence(rng, 60)} ({k})",
                "reference_answer": sentence(rng, 40),
                "question_source": rng.choice(["medical_o1_reasoning", "MedQA", "MedMCQA"]),
                "rubric": rubric,
                "rubric_list": [item["description"] for item in rubric],
                "rubric_count": len(rubric),
            }
        )
    pq.write_table(pa.Table.from_pylist(records), path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--criteria", type=int, default=7, help="rubric items per row (RaR rows have about 7)")
    p.add_argument("--write", help=argparse.SUPPRESS)  # the child process: write the file and exit
    args = p.parse_args()
    if args.write:
        write_file(Path(args.write), args.rows, args.criteria)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data" / "train-00000-of-00001.parquet"
        path.parent.mkdir()
        child = [sys.executable, __file__, "--write", str(path), "--rows", str(args.rows)]
        subprocess.run([*child, "--criteria", str(args.criteria)], check=True)
        import pyarrow.parquet  # noqa: F401  (imported before measuring, as any user has it loaded)

        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        tasks = load_taskset(folder)
        seconds = time.perf_counter() - start
        after = rss_mb()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"file: {args.rows} rows x {args.criteria} criteria, {path.stat().st_size / 2**20:.1f} MB parquet")
        print(
            f"load_taskset: {len(tasks)} tasks, splits {tasks.splits}, in {seconds:.2f} s "
            f"({len(tasks) / seconds:,.0f} rows/s)"
        )
        print(
            f"memory: RSS {before:.0f} MB before, {after:.0f} MB after: the task set holds {after - before:.0f} MB; "
            f"peak during the load {peak - before:.0f} MB above before"
        )
        print(f"target under 3 s: {'met' if seconds < 3 else 'missed'}")


if __name__ == "__main__":
    main()
