"""Memory of an env drawing from a 100,000-row task set streamed from parquet.

Writes a RaR-like parquet file (the rows of ``load_parquet.py``) in a child process, opens it with
``datasets.load_dataset("parquet", ..., streaming=True)``, makes the token env on it (the bundled
model's tokenizer and judge, self-judging), and resets the env ``--draws`` times: every reset draws
a task from the stream's buffer and encodes its prompt. Prints the peak resident memory (RSS)
during the draws above the RSS before the first one (the kernel's high-water mark, reset first),
the rows read and the draws per second. With ``--compare`` a fresh process also loads the same
file into a TaskSet and prints the RSS that holds. Target: under 300 MB for 100,000 rows.

    python benchmarks/streaming_memory.py [--rows 100000] [--draws 100000] [--buffer 1024] [--compare]
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from load_parquet import rss_mb  # noqa: E402  (benchmarks/ is the script's folder)

TARGET_MB = 300


def reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of this process; False where Linux refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """The RSS high-water mark (VmHWM) in MB."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--criteria", type=int, default=7, help="rubric items per row")
    p.add_argument("--draws", type=int, default=100_000, help="env resets (each draws one task)")
    p.add_argument("--buffer", type=int, default=1024, help="the stream's shuffle buffer (tasks)")
    p.add_argument("--model", default="bundled", help="the policy whose tokenizer encodes the prompts")
    p.add_argument("--compare", action="store_true", help="also load the file into a TaskSet (another process)")
    p.add_argument("--hold", help=argparse.SUPPRESS)  # the comparison's child process
    args = p.parse_args()
    if args.hold:
        hold(args.hold)
        return

    import datasets
    import gymnasium as gym

    import g2r_env  # noqa: F401
    from g2r_env.env import build_scorer
    from tasks import load_taskset

    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train-00000-of-00001.parquet"
        writer = [sys.executable, str(Path(__file__).with_name("load_parquet.py")), "--write", str(path)]
        subprocess.run([*writer, "--rows", str(args.rows), "--criteria", str(args.criteria)], check=True)
        scorer = build_scorer(args.model, judge="self", device="cpu")
        stream = load_taskset(
            datasets.load_dataset("parquet", data_files=str(path), split="train", streaming=True),
            buffer_size=args.buffer,
        )
        env = gym.make("Grad2Reward/OpenEnded-v0", tasks=stream, scorer=scorer, model=args.model, prompt_width=512)
        env.reset(seed=0)  # the first draw fills the buffer; imports and caches settle
        gc.collect()
        before = rss_mb()
        if not reset_peak():
            print("cannot reset the RSS high-water mark here; the peak below includes earlier work")
        start = time.perf_counter()
        for _ in range(args.draws):
            env.reset()
        seconds = time.perf_counter() - start
        peak = peak_mb()
        print(f"file: {args.rows} rows x {args.criteria} criteria, {path.stat().st_size / 2**20:.1f} MB parquet")
        print(
            f"env: {args.draws + 1} draws in {seconds:.1f} s ({args.draws / seconds:,.0f} draws/s), "
            f"{env.unwrapped.tasks.rows_read} rows read (buffer {args.buffer})"
        )
        print(
            f"memory: RSS {before:.0f} MB before the draws; peak during them {peak - before:.0f} MB above that "
            f"(target under {TARGET_MB} MB: {'met' if peak - before < TARGET_MB else 'missed'})"
        )
        if args.compare:  # in a fresh process: memory this one freed would be reused and hide the cost
            subprocess.run([sys.executable, __file__, "--hold", str(path)], check=True)


def hold(path: str) -> None:
    """Load ``path`` into a TaskSet and print the RSS it holds."""
    from tasks import load_taskset

    gc.collect()
    before = rss_mb()
    tasks = load_taskset(path)
    print(f"for comparison, the same file loaded as a TaskSet ({len(tasks)} tasks) holds {rss_mb() - before:.0f} MB")


if __name__ == "__main__":
    main()
