"""Loaders for task files: our own format, the RaR rubric format and the HealthBench format.

Sources (``load_taskset``):

- JSON Lines (``*.jsonl``: one object per line, blank lines ignored); a bad line is reported as
  ``file:line: what is wrong`` (lines counted from 1, as editors do);
- parquet (``*.parquet``), read in record batches with pyarrow; a bad row is reported as
  ``file:row N: what is wrong`` (rows counted from 0, as pandas and ``datasets`` index them);
- a folder of such files (in name order), and a folder laid out like a Hugging Face hub dataset:
  files in ``data/`` named ``<split>-*`` or ``<split>.<ext>``, or anywhere named like a hub shard
  (``<split>-00000-of-00001.parquet``), give their rows that split (``train``, ``val``, ``test``,
  any name; a row's own ``split`` field wins);
- the hub's parquet conversion (the ``refs/convert/parquet`` branch): ``<config>/<split>/0000.parquet``,
  read from the config folder, from a root holding one config, or from one split folder;
- a ``datasets.Dataset`` or ``DatasetDict`` object (the ``datasets`` package is optional); a
  ``DatasetDict``'s keys are the splits, and errors read ``dataset[split]:row N``;
- a ``datasets.IterableDataset`` or ``IterableDatasetDict`` (``streaming=True``): a ``TaskStream``,
  read lazily with bounded memory (``tasks/stream.py``).

Splits: any non-empty name a row or file gives is a split of its own (``val`` and ``validation``
stay two names); a row without one is in "train". "all" is not a split name (it selects every
split), and a null, empty or non-string split is an error.

Ids: a row's ``id`` (RaR: ``id`` or ``prompt_id``; HealthBench: ``prompt_id``) when it has one;
otherwise ``<format>-<12 hex digits>``, the start of the SHA-1 of the prompt and the rubric
(criterion texts and weights). A content id stays the same when a dataset is re-sharded,
re-ordered, converted between parquet, JSONL and ``datasets``, or split differently, and a row
whose prompt or rubric changes gets a new id, so a stale id fails loudly instead of naming another
task. Rows that repeat an earlier row's prompt and rubric exactly are kept, with ``-2``, ``-3`` ...
appended to the id, and a warning.

Own format (``format="g2r"``), one object per row::

    {"id": "expl-001", "prompt": "Explain ...", "domain": "explanation", "split": "train",
     "criteria": [{"criterion": "Mentions ...", "weight": 2},
                  {"criterion": "Gives unsafe advice", "weight": -3}]}

``prompt`` may also be a list of chat messages ``[{"role": "user", "content": "..."}]``;
``split`` defaults to "train", ``domain`` to "", ``weight`` to 1; ``tags`` (a list of strings, on
the task or on a criterion) to none. A criterion may carry a ``check`` (``tasks.checks``, e.g.
``{"type": "words", "lt": 150}``): its verdict then comes from that check on the response text,
not from the judge. Any other field is kept in ``Task.metadata``.

RaR (``format="rar"``, the RaR-Medicine/RaR-Science columns): ``{"question": ...,
"reference_answer": ..., "question_source": ..., "rubric": [{"title", "description", "weight"}]}``;
``rubric_list`` (the descriptions) and ``rubric_count`` (their number), derived from ``rubric``, are
checked against it: a row where they disagree loads from ``rubric`` and is named in a warning (one
per file, with the number of such rows).

Polarity: a negative-weight criterion phrased as an avoidance ("Avoids ...", "Does not ...") is
reported once per file, or refused, or counted as positive: ``polarity=`` of ``load_taskset``
(``tasks/polarity.py``).

HealthBench (``format="healthbench"``): ``{"prompt_id": ..., "prompt": [messages],
"rubrics": [{"criterion", "points", "tags"}], "example_tags": [...]}``; each criterion keeps its
tags (``axis:accuracy``, ``level:example`` ...), the task keeps ``example_tags`` as ``Task.tags``
and its ``theme:`` tag as its domain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from .checks import Check, CheckFormatError
from .polarity import PolarityCheck, check_polarity
from .stream import DEFAULT_BUFFER, TaskStream, iterable_parts
from .types import Criterion, Task, TaskSet

BUNDLED_DIR = Path(__file__).parent / "data"
BUNDLED = {folder.name: folder for folder in sorted(BUNDLED_DIR.iterdir()) if folder.is_dir()}
"""The bundled task sets by name: every folder of tasks/data (openended-mini, judge-extra)."""
TASK_FILE_SUFFIXES = (".jsonl", ".parquet")
"""The file types a task folder is read for."""
PARQUET_BATCH_ROWS = 1024
"""Rows converted to Python objects at a time when reading parquet."""
TaskParser = Callable[[dict, str, Optional[str]], Task]
FORMATS: dict[str, TaskParser] = {}
"""Task formats by name; each parses one row (the row, ``file:line`` for errors, the id to use
when the row has none, or None for a content id)."""


def register_format(name: str) -> Callable[[TaskParser], TaskParser]:
    """Register a row parser under a format name (``load_taskset(..., format=name)``)."""

    def decorator(parser: TaskParser) -> TaskParser:
        FORMATS[name] = parser
        return parser

    return decorator


class TaskFormatError(ValueError):
    """A task file that cannot be read; the message starts with ``file:line:`` (``file:row N:``)."""


def content_id(prefix: str, prompt: Any, criteria: Iterable[Criterion]) -> str:
    """``<prefix>-<12 hex digits>``: the start of the SHA-1 of the prompt and the rubric (texts, weights)."""
    if not isinstance(prompt, str):
        prompt = [[m.get("role"), m.get("content")] for m in prompt]
    payload = json.dumps([prompt, [[c.criterion, c.weight] for c in criteria]], ensure_ascii=False)
    return f"{prefix}-{hashlib.sha1(payload.encode('utf-8')).hexdigest()[:12]}"


def _row_id(row: dict, keys: Iterable[str], where: str) -> Optional[str]:
    """The row's own id under the first of ``keys`` it has (None when it has none); a key that is
    there with null (or any non-id value) is an error, not an id "None"."""
    for key in keys:
        if key not in row:
            continue
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise TaskFormatError(f"{where}: {key!r} must be a non-empty string or integer, got {value!r}")
        return str(value)
    return None


def _domain(row: dict, where: str) -> str:
    domain = row.get("domain", "")
    if not isinstance(domain, str):
        raise TaskFormatError(f"{where}: 'domain' must be a string, got {domain!r}")
    return domain


def _split(row: dict, where: str) -> str:
    split = row.get("split", "train")
    if not isinstance(split, str) or not split.strip() or split != split.strip() or split == "all":
        raise TaskFormatError(
            f"{where}: split must be a non-empty name such as 'train', 'val' or 'test' (not 'all', which "
            f"selects every split), got {split!r}; fix the row's 'split' or leave it out (train)"
        )
    return split


def _require(row: dict, key: str, where: str) -> Any:
    if key not in row:
        raise TaskFormatError(f"{where}: missing field {key!r} (fields present: {sorted(row)})")
    return row[key]


def _prompt(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(value)
    raise TaskFormatError(f"{where}: 'prompt' must be a string or a list of {{role, content}} messages, got {value!r}")


def _weight(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise TaskFormatError(f"{where}: {what} must be a number, got {value!r}")
    return float(value)


def _tags(value: Any, where: str, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise TaskFormatError(f"{where}: {what} must be a list of strings, got {value!r}")
    return tuple(value)


def _criteria(
    items: Any,
    where: str,
    text_of: Callable[[dict], str],
    weight_key: str,
    default_weight: float | None = None,
    checks: bool = False,
) -> list[Criterion]:
    if not isinstance(items, list) or not items:
        raise TaskFormatError(f"{where}: the rubric must be a non-empty list")
    criteria = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise TaskFormatError(f"{where}: rubric item {k} must be an object, got {item!r}")
        text = text_of(item)
        if not isinstance(text, str) or not text.strip():
            raise TaskFormatError(f"{where}: rubric item {k} has no criterion text")
        if weight_key in item:
            weight = _weight(item[weight_key], where, f"rubric item {k} {weight_key!r}")
        elif default_weight is not None:
            weight = default_weight
        else:
            raise TaskFormatError(f"{where}: rubric item {k} is missing field {weight_key!r}")
        check = None
        if checks and item.get("check") is not None:
            try:
                check = Check.parse(item["check"], f"{where}: rubric item {k}")
            except CheckFormatError as err:
                raise TaskFormatError(str(err)) from None
        criteria.append(Criterion(text.strip(), weight, _tags(item.get("tags"), where, f"rubric item {k} tags"), check))
    return criteria


@register_format("g2r")
def _parse_g2r(row: dict, where: str, default_id: Optional[str]) -> Task:
    prompt = _prompt(_require(row, "prompt", where), where)
    criteria = _criteria(
        _require(row, "criteria", where),
        where,
        lambda item: item.get("criterion"),
        "weight",
        default_weight=1.0,
        checks=True,
    )
    return Task(
        _row_id(row, ("id",), where) or default_id or content_id("g2r", prompt, criteria),
        prompt,
        tuple(criteria),
        split=_split(row, where),
        domain=_domain(row, where),
        metadata={k: v for k, v in row.items() if k not in ("id", "prompt", "criteria", "split", "domain", "tags")},
        tags=_tags(row.get("tags"), where, "'tags'"),
    )


def _rar_text(item: dict) -> str:
    # RaR descriptions are self-contained ("Essential Criteria: ..."); the title only names them
    return item.get("description") or item.get("title")


@register_format("rar")
def _parse_rar(row: dict, where: str, default_id: Optional[str]) -> Task:
    question = _require(row, "question", where)
    criteria = _criteria(_require(row, "rubric", where), where, _rar_text, "weight")
    return Task(
        _row_id(row, ("id", "prompt_id"), where) or default_id or content_id("rar", question, criteria),
        question,
        tuple(criteria),
        split=_split(row, where),
        domain=str(row.get("domain") or row.get("category") or ""),
        metadata={"reference_answer": row.get("reference_answer"), "question_source": row.get("question_source")},
    )


@register_format("healthbench")
def _parse_healthbench(row: dict, where: str, default_id: Optional[str]) -> Task:
    prompt = _require(row, "prompt", where)
    if not isinstance(prompt, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in prompt):
        raise TaskFormatError(f"{where}: 'prompt' must be a list of {{role, content}} messages")
    criteria = _criteria(_require(row, "rubrics", where), where, lambda item: item.get("criterion"), "points")
    tags = _tags(row.get("example_tags"), where, "'example_tags'")
    domain = next((t.split(":", 1)[1] for t in tags if t.startswith("theme:")), "health")
    metadata = {"example_tags": list(tags)}
    if row.get("ideal_completions_data"):
        metadata["ideal_completions_data"] = row["ideal_completions_data"]
    return Task(
        _row_id(row, ("prompt_id",), where) or default_id or content_id("healthbench", prompt, criteria),
        tuple(prompt),
        tuple(criteria),
        split=_split(row, where),
        domain=domain,
        metadata=metadata,
        tags=tags,
    )


def parse_task(row: dict, where: str = "task", default_id: Optional[str] = None, format: str = "g2r") -> Task:
    """One task from a parsed row in ``format`` ("g2r", "rar" or "healthbench"); errors name ``where``.

    A row without an id gets ``default_id``, or a content id (module doc) when that is None.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown task format {format!r}; choose one of {list(FORMATS)}")
    return FORMATS[format](row, where, default_id)


def detect_format(row: dict) -> str:
    """Guess the format of one parsed row from its fields."""
    if "rubrics" in row and "prompt" in row:
        return "healthbench"
    if "rubric" in row and "question" in row:
        return "rar"
    return "g2r"


def iter_tasks(path: str | os.PathLike, format: str = "auto") -> Iterable[Task]:
    """Yield the tasks of one JSONL or parquet file, raising TaskFormatError with file and row on bad input."""
    path = Path(path)
    for _, _, task in _parse_rows(_file_rows(path, split_from_name(path)), format):
        yield task


def read_rows(path: Path) -> Iterable[tuple[str, dict]]:
    """(``file:line``, object) for every non-blank line of a JSON Lines file, or (``file:row N``,
    object) for every row of a parquet file (``*.parquet``; rows counted from 0).

    A UTF-8 byte-order mark is accepted; bad UTF-8, bad JSON, lines that are not objects and
    unreadable parquet raise TaskFormatError naming the file (and line).
    """
    path = Path(path)
    if path.suffix == ".parquet":
        yield from _parquet_rows(path)
        return
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise TaskFormatError(f"{where}: not valid UTF-8 (byte {err.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaskFormatError(f"{where}: bad JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise TaskFormatError(f"{where}: each line must be a JSON object, got {type(row).__name__}")
            yield where, row


def row_position(where: str) -> str:
    """The line or row number of a ``file:line`` / ``file:row N`` location, as text."""
    return where.rsplit(":", 1)[-1].removeprefix("row ")


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"{path}: reading parquet needs pyarrow: pip install 'grad2reward[data]'") from None

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS)
        yield from _arrow_rows(batches, str(path))
    except (pa.ArrowException, OSError) as err:
        raise TaskFormatError(f"{path}: not a readable parquet file ({err}); re-download or re-export it") from None


def _arrow_rows(batches: Iterable, label: str) -> Iterator[tuple[str, dict]]:
    """(``label:row N``, row) over pyarrow record batches or tables, converted one batch at a time."""
    row_no = 0
    for batch in batches:
        for row in batch.to_pylist():
            yield f"{label}:row {row_no}", row
            row_no += 1


_HUB_SHARD = re.compile(r"^([A-Za-z][\w.]*?)-\d{5}-of-\d{5}")
_LEADING_NAME = re.compile(r"^[A-Za-z]\w*")
_CONVERTED_SHARD = re.compile(r"^\d{4,5}\.parquet$")


def split_from_name(path: Path) -> Optional[str]:
    """The split a file's name gives in the hub layout: ``<split>-00000-of-00001*`` anywhere,
    ``<split>-*`` / ``<split>.<ext>`` inside a ``data/`` folder, or ``<split>/0000.parquet`` (the hub's
    parquet conversion, ``<config>/<split>/0000.parquet``; a ``partial-<split>`` folder, as the
    conversion names a split it cut short, is ``<split>``); None otherwise."""
    shard = _HUB_SHARD.match(path.name)
    if shard:
        return shard.group(1)
    if path.parent.name == "data":
        name = _LEADING_NAME.match(path.name)
        return name.group(0) if name else None
    if _CONVERTED_SHARD.match(path.name) and path.parent.name:
        return path.parent.name.removeprefix("partial-")
    return None


def _converted_splits(folder: Path) -> list[Path]:
    """The split folders of a parquet-conversion config folder (sub-folders holding ``0000.parquet`` ...)."""
    return sorted(
        d for d in folder.iterdir() if d.is_dir() and any(_CONVERTED_SHARD.match(f.name) for f in d.iterdir())
    )


def _converted_files(path: Path) -> list[Path]:
    """The shards of the hub's parquet-conversion layout under ``path``: a config folder
    (``<split>/0000.parquet``) or a root of config folders, which must hold just one."""
    splits = _converted_splits(path)
    if not splits:
        configs = [d for d in sorted(path.iterdir()) if d.is_dir() and _converted_splits(d)]
        if len(configs) > 1:
            raise ValueError(
                f"{path} holds {len(configs)} configs in the hub's parquet layout "
                f"({', '.join(d.name for d in configs)}); load one of them: {configs[0]}"
            )
        splits = _converted_splits(configs[0]) if configs else []
    return [f for d in splits for f in sorted(d.iterdir()) if _CONVERTED_SHARD.match(f.name)]


def _task_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix in TASK_FILE_SUFFIXES)
    data = path / "data"
    if data.is_dir():
        files += sorted(f for f in data.iterdir() if f.is_file() and f.suffix in TASK_FILE_SUFFIXES)
    return files or _converted_files(path)


def _file_rows(path: Path, split: Optional[str]) -> Iterator[tuple[str, Optional[str], dict]]:
    for where, row in read_rows(path):
        yield where, split, row


def rar_list_mismatch(row: dict) -> Optional[str]:
    """What is wrong with a RaR row's ``rubric_list`` / ``rubric_count`` given its ``rubric`` (None
    when they agree or are absent): the count must be the rubric's length, the list its descriptions."""
    rubric = row.get("rubric")
    if not isinstance(rubric, list):
        return None
    count, listed = row.get("rubric_count"), row.get("rubric_list")
    if count is not None and count != len(rubric):
        return f"rubric_count {count!r} but {len(rubric)} rubric items"
    if listed is None:
        return None
    if not isinstance(listed, list) or len(listed) != len(rubric):
        return (
            f"rubric_list has {len(listed) if isinstance(listed, list) else repr(listed)} entries, rubric {len(rubric)}"
        )
    for k, (text, item) in enumerate(zip(listed, rubric)):
        wanted = item.get("description") if isinstance(item, dict) else None
        if not isinstance(text, str) or not isinstance(wanted, str) or text.strip() != wanted.strip():
            return f"rubric_list[{k}] {str(text)[:60]!r} is not rubric item {k}'s description"
    return None


def _warn_per_file(found: dict[str, list[tuple[str, str]]], what: str) -> None:
    for source, items in found.items():
        examples = "; ".join(f"{where}: {message}" for where, message in items[:3])
        warnings.warn(f"{source}: {len(items)} row(s) {what}, e.g. {examples}", stacklevel=4)


def _parse_rows(rows: Iterable[tuple[str, Optional[str], dict]], format: str) -> Iterator[tuple[str, str, Task]]:
    """(where, format, task) for (where, split the source gives or None, row) triples; RaR rows whose
    ``rubric_list``/``rubric_count`` disagree with ``rubric`` are warned about when the rows end."""
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown task format {format!r}; choose one of {list(FORMATS)} or 'auto'")
    mismatched: dict[str, list[tuple[str, str]]] = {}
    for where, fmt, task, row in _parse_each(rows, format):
        yield where, fmt, task
        if fmt == "rar" and (problem := rar_list_mismatch(row)):
            mismatched.setdefault(where.rsplit(":", 1)[0], []).append((where, problem))
    _warn_per_file(mismatched, "have a rubric_list/rubric_count that disagrees with rubric (read from rubric)")


def _parse_each(rows: Iterable[tuple[str, Optional[str], dict]], format: str) -> Iterator[tuple[str, str, Task, dict]]:
    for where, split, row in rows:
        if split is not None and "split" not in row:
            row = {**row, "split": split}  # a streamed source may hand out its own dicts: not changed
        fmt = detect_format(row) if format == "auto" else format
        try:
            task = parse_task(row, where, None, fmt)
        except (ValueError, TypeError) as err:
            message = str(err) if isinstance(err, TaskFormatError) else f"{where}: {err}"
            if format == "auto":
                message += f" [read as format {fmt!r}, guessed from the fields; pass format= to choose]"
            raise TaskFormatError(message) from None
        yield where, fmt, task, row


def _collect(rows: Iterable[tuple[str, Optional[str], dict]], format: str, name: str, polarity: str) -> TaskSet:
    """The task set of parsed rows: duplicate explicit ids are errors, repeated content gets -2, -3 ...;
    ``polarity`` applied to each task once its id is decided."""
    polarity_check = PolarityCheck(polarity)
    tasks: list[Task] = []
    first_seen: dict[str, str] = {}
    repeats: list[tuple[str, str]] = []
    for where, fmt, task in _parse_rows(rows, format):
        if task.task_id in first_seen:
            if task.task_id != content_id(fmt, task.prompt, task.criteria):
                raise TaskFormatError(
                    f"{where}: duplicate task id {task.task_id!r} (first at {first_seen[task.task_id]}); "
                    "ids must be unique across all files and splits"
                )
            n = 2
            while f"{task.task_id}-{n}" in first_seen:
                n += 1
            repeats.append((where, first_seen[task.task_id]))
            task = replace(task, task_id=f"{task.task_id}-{n}")
        first_seen[task.task_id] = where
        tasks.append(polarity_check(where, task))
    polarity_check.finish()
    if repeats:
        warnings.warn(
            f"{name}: {len(repeats)} row(s) repeat the prompt and rubric of an earlier row (first: "
            f"{repeats[0][0]} repeats {repeats[0][1]}); kept, with -2, -3 ... appended to their ids",
            stacklevel=3,
        )
    return TaskSet(tasks, name)


def _dataset_parts(source: Any) -> tuple[str, list[tuple[Optional[str], Any]]]:
    """(name, [(split or None, Dataset)]) of a ``datasets`` object; TypeError for anything else."""
    try:
        import datasets
    except ImportError:
        datasets = None
    if datasets is not None and isinstance(source, datasets.DatasetDict):
        parts = [(str(split), ds) for split, ds in source.items()]
    elif datasets is not None and isinstance(source, datasets.Dataset):
        parts = [(None if source.split is None else str(source.split), source)]
    else:
        raise TypeError(
            "load_taskset takes a bundled set name, a file or folder path, a TaskSet, or a "
            f"datasets.Dataset/DatasetDict; got {type(source).__name__}"
        )
    infos = [ds.info.dataset_name for _, ds in parts if getattr(ds.info, "dataset_name", None)]
    return (infos[0] if infos else "dataset"), parts


def _dataset_rows(name: str, parts: list[tuple[Optional[str], Any]]) -> Iterator[tuple[str, Optional[str], dict]]:
    for split, ds in parts:
        label = f"{name}[{split}]" if split is not None else name
        tables = ds.with_format("arrow").iter(batch_size=PARQUET_BATCH_ROWS)
        for where, row in _arrow_rows(tables, label):
            yield where, split, row


def _stream_tasks(label: str, split: Optional[str], dataset: Any, format: str, polarity: str) -> Iterator[Task]:
    """One pass over a streamed ``datasets`` part, parsed as read; warnings at the end of the pass."""
    polarity_check = PolarityCheck(polarity)
    rows = ((f"{label}:row {n}", split, row) for n, row in enumerate(dataset))
    for where, _, task in _parse_rows(rows, format):
        yield polarity_check(where, task)
    polarity_check.finish()


def _stream(name: str, parts: list, keyed: bool, format: str, polarity: str, buffer_size: int) -> TaskStream:
    def reader(split: Optional[str], dataset: Any) -> Callable[[], Iterator[Task]]:
        label = f"{name}[{split}]" if keyed else name
        return lambda: _stream_tasks(label, split, dataset, format, polarity)

    return TaskStream(name, [(split, reader(split, ds)) for split, ds in parts], buffer_size, keyed=keyed)


def load_taskset(
    source: Any = "openended-mini",
    format: str = "auto",
    split: str = "all",
    polarity: str = "warn",
    buffer_size: int = DEFAULT_BUFFER,
) -> TaskSet | TaskStream:
    """Load a task set.

    Args:
        source: a bundled set's name (``"openended-mini"``), a JSONL or parquet file, a folder of
            them or a hub-layout folder (``data/train-*.parquet`` ...), a TaskSet, or a
            ``datasets.Dataset``/``DatasetDict`` (module doc).
        format: "g2r", "rar", "healthbench" or "auto" (decided per row from its fields).
        split: a split name ("train", "val", "test", ...; ``TaskSet.splits`` lists them) or "all".
        polarity: what to do with negative-weight criteria phrased as avoidances ("Avoids ...",
            "Does not ..."): "warn" (default: one warning per file, with their number and three
            examples), "error", "flip" (their weight made positive, the text kept: avoiding then
            earns points) or "ignore"; ``tasks/polarity.py`` says exactly what each does.
        buffer_size: for a streamed source only, the tasks held to draw from (``tasks/stream.py``).

    Returns:
        A TaskSet, or for a ``datasets.IterableDataset``/``IterableDatasetDict`` (streaming) a
        TaskStream: read lazily, drawn from through a buffer, never held whole.

    Raises:
        TaskFormatError: a row is bad JSON, lacks a field, has a non-numeric weight, a rubric with
            no positive weight or a bad split, or repeats an explicit id; the message names the
            file and line (``file:row N`` for parquet and ``datasets`` rows).
        FileNotFoundError: neither a bundled name nor an existing path, or a folder without task files.
        TypeError: a source of another type.
    """
    check_polarity(polarity)
    if isinstance(source, (TaskSet, TaskStream)):
        return source.split(split)
    streamed = iterable_parts(source)
    if streamed is not None:
        return _stream(*streamed, format, polarity, buffer_size).split(split)
    if not isinstance(source, (str, os.PathLike)):
        name, parts = _dataset_parts(source)
        return _collect(_dataset_rows(name, parts), format, name, polarity).split(split)
    name = str(source)
    path = BUNDLED.get(name, Path(name))
    if not path.exists():
        raise FileNotFoundError(
            f"no task set {name!r}: not a bundled set ({', '.join(BUNDLED)}) nor an existing file or folder"
        )
    files = _task_files(path)
    if not files:
        raise FileNotFoundError(f"{path} holds no *.jsonl or *.parquet file (nor a data/ folder with them)")
    rows = (item for file in files for item in _file_rows(file, split_from_name(file)))
    return _collect(rows, format, name if name in BUNDLED else path.name, polarity).split(split)
