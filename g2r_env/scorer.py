"""Grad2Reward: judge verdicts turned into per-token rewards with one backward pass (README, "The reward", steps 1-4).

For a task with rubric items (c_k, w_k) and a response, each criterion is judged (p_k, met_k), the
sequence reward is R = sum_k w_k met_k / sum_k max(w_k, 0), and each met criterion's share
w_k met_k / sum max(w, 0) is spread over the response tokens by its attribution alpha_k. The token
rewards therefore sum to R. This module is the one reward path: the env, the vector env and the
bundled agents all call ``Grad2Reward.score_batch``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from tasks import Task

from .attribution import Tau, check_tau, get_attribution
from .judge import Judge
from .models import stop_token_ids
from .tokens import token_pieces


@dataclass
class ScoreResult:
    """The judged reward of one response.

    Attributes:
        task_id: the task's id.
        response_ids: the response as policy token ids (including a final stop token, if any).
        token_rewards: float32, one per response token; sums to ``sequence_reward``.
        sequence_reward: R, in [min weight share, 1].
        criteria: per rubric item a dict with ``criterion``, ``weight``, ``met`` (bool),
            ``p_true`` (float) and ``alpha`` (float32 credit over the response tokens, or None for
            a criterion that earned no credit).
    """

    task_id: str
    response_ids: np.ndarray
    token_rewards: np.ndarray
    sequence_reward: float
    criteria: list[dict] = field(default_factory=list)


@dataclass
class _Pair:
    response: int  # index of the response in the batch
    criterion: int  # index of the criterion in its task's rubric
    input_ids: list[int]
    span: slice  # response positions inside input_ids
    p_true: float = 0.0
    alpha: Optional[torch.Tensor] = None


class Grad2Reward:
    """Per-token rewards from one backward pass through a rubric judge.

    Args:
        judge: the Judge (frozen).
        attribution: "grad_x_embed" (default), "grad_l1", "grad_l2", "uniform", "last_token", or
            any name added with ``g2r_env.register_attribution``.
        tau: softmax temperature of the attribution; "auto" is the std of the scores.
        soft: use p_true instead of the 0/1 verdict in the rewards (all criteria get credit).
        policy_tokenizer: the policy's tokenizer when it differs from the judge's; responses are
            then decoded, re-tokenized for the judge and attributions mapped back by character
            overlap. None means the judge shares the policy's tokenizer (the bundled model and its
            judges, or self-judging): the response ids go to the judge as they are.
        progress: show a progress bar over micro-batches.
    """

    def __init__(
        self,
        judge: Judge,
        attribution: str = "grad_x_embed",
        tau: Tau = "auto",
        soft: bool = False,
        policy_tokenizer=None,
        progress: bool = False,
    ) -> None:
        self.judge = judge
        self.attribution = get_attribution(attribution)
        check_tau(tau)
        self.tau = tau
        if not isinstance(soft, bool):
            raise ValueError(f"soft must be True or False, got {soft!r}")
        self.soft = soft
        if policy_tokenizer is not None and policy_tokenizer.get_vocab() == judge.tokenizer.get_vocab():
            policy_tokenizer = None  # same vocabulary: token ids carry over one to one
        self.policy_tokenizer = policy_tokenizer
        self.stop_ids = frozenset(stop_token_ids(policy_tokenizer or judge.tokenizer))
        self.progress = progress

    # ----------------------------------------------------------------------------------------
    def score(self, task: Task, response_ids: Sequence[int]) -> ScoreResult:
        """Score one response; see ``score_batch``."""
        return self.score_batch([task], [response_ids])[0]

    def score_batch(
        self, tasks: Sequence[Task], responses: Sequence[Sequence[int]], dense: bool = True
    ) -> list[ScoreResult]:
        """Judge every (response, criterion) pair in padded micro-batches and attribute the rewards.

        Args:
            tasks: one task per response.
            responses: policy token ids per response; a trailing stop token is kept in the result
                (with reward 0 unless the method credits it) but not shown to the judge.
            dense: False runs the judge forward only and puts R on the last token (the sparse
                reward), whatever the attribution method.

        Raises:
            ValueError: an empty response, a token id outside the vocabulary, or a judge input
                longer than the judge's context.
            FloatingPointError: a non-finite judge gradient.
        """
        if len(tasks) != len(responses):
            raise ValueError(f"got {len(tasks)} tasks for {len(responses)} responses")
        responses = [[int(t) for t in r] for r in responses]
        contents, pairs, maps = self._build_pairs(tasks, responses)
        self._run_judge(pairs, tasks, dense=dense)
        return [
            self._assemble(i, task, responses[i], contents[i], pairs, maps[i], dense) for i, task in enumerate(tasks)
        ]

    def check_room(self, tasks: Sequence[Task], response_tokens: int) -> None:
        """ValueError when a response of ``response_tokens`` tokens cannot fit in the judge's context
        beside the longest question and the longest criterion of ``tasks`` (checked when an env is
        made, not at the end of its first episode). With a judge of another tokenizer the response's
        judge tokens are taken to be as many as its policy tokens."""
        longest_question = max(tasks, key=lambda t: len(t.question))
        pairs = [(longest_question, max(longest_question.criteria, key=lambda c: len(c.criterion)))]
        pairs.append(max(((t, c) for t in tasks for c in t.criteria), key=lambda tc: len(tc[1].criterion)))
        for task, criterion in pairs:
            before, after = self.judge.frame(task, criterion.criterion)
            frame = len(before) + len(after)
            if frame + response_tokens > self.judge.max_length:
                raise ValueError(
                    f"max_new_tokens={response_tokens} does not fit the judge's context of {self.judge.max_length} "
                    f"tokens beside task {task.task_id}'s question and criterion ({frame} tokens); use at most "
                    f"max_new_tokens={max(self.judge.max_length - frame, 0)}"
                )

    def attribute(self, tasks: Sequence[Task], responses: Sequence[Sequence[int]]) -> list[tuple[float, np.ndarray]]:
        """(p_true, alpha) of the first criterion of each task for each response, alpha computed
        whatever the verdict (to measure where credit lands); alpha is over the response's content
        tokens in the judge's tokenization."""
        responses = [[int(t) for t in r] for r in responses]
        for task in tasks:
            if len(task.criteria) != 1:
                raise ValueError(f"attribute() takes one-criterion tasks; {task.task_id} has {len(task.criteria)}")
        _, pairs, _ = self._build_pairs(tasks, responses)
        self._run_judge(pairs, tasks, force=True)
        return [(pair.p_true, None if pair.alpha is None else pair.alpha.double().numpy()) for pair in pairs]

    # ----------------------------------------------------------------------------------------
    def _build_pairs(self, tasks, responses):
        vocab = len(self.policy_tokenizer or self.judge.tokenizer)
        contents, pairs, maps = [], [], []
        for i, (task, response) in enumerate(zip(tasks, responses)):
            if not response:
                raise ValueError(f"task {task.task_id}: empty response (a response needs at least one token)")
            bad = [t for t in response if not 0 <= t < vocab]
            if bad:
                raise ValueError(f"task {task.task_id}: token id {bad[0]} is outside the vocabulary (size {vocab})")
            end = len(response)
            while end > 0 and response[end - 1] in self.stop_ids:
                end -= 1
            content = response[:end]
            contents.append(content)
            judged, token_map = content, None
            if self.policy_tokenizer is not None:
                judged, token_map = self._retokenize(content)
            maps.append(token_map)
            for k, criterion in enumerate(task.criteria):
                ids, span = self.judge.build_input(task, criterion.criterion, judged)
                if len(ids) > self.judge.max_length:
                    frame = len(ids) - len(judged)
                    if frame >= self.judge.max_length:
                        raise ValueError(
                            f"task {task.task_id}: with criterion {criterion.criterion[:60]!r}... the judge input is "
                            f"{frame} tokens before any response, beyond the judge's context of "
                            f"{self.judge.max_length}; shorten the criterion or the question"
                        )
                    raise ValueError(
                        f"task {task.task_id}: the judge input is {len(ids)} tokens ({len(judged)} of response), "
                        f"longer than the judge's context of {self.judge.max_length}; lower max_new_tokens or use "
                        f"a judge with a longer context"
                    )
                pairs.append(_Pair(i, k, ids, span))
        return contents, pairs, maps

    def _run_judge(self, pairs: list[_Pair], tasks: Sequence[Task], dense: bool = True, force: bool = False) -> None:
        """One forward (and one backward, if any pair earns credit) per micro-batch.

        ``dense=False`` runs the forward pass only; ``force=True`` attributes every pair, met or
        not (to study where credit would land).
        """
        judge, method = self.judge, self.attribution
        true_id, false_id = judge.verdict_ids
        order = sorted(range(len(pairs)), key=lambda j: -len(pairs[j].input_ids))  # less padding
        batches = [order[s : s + judge.micro_batch_size] for s in range(0, len(order), judge.micro_batch_size)]
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="judging", unit="batch")
        for batch in batches:
            rows = [pairs[j] for j in batch]
            input_ids, mask = judge.pad_batch([p.input_ids for p in rows])
            if not (dense and method.needs_grad):
                with torch.no_grad():
                    p_true = judge.p_true(judge.answer_logits(judge.embed(input_ids), mask))
                for pair, p in zip(rows, p_true.tolist()):
                    self._check_p_true(p, tasks[pair.response], pair)
                    pair.p_true = p
                continue
            with torch.enable_grad():
                embeds = judge.embed(input_ids).detach().requires_grad_(True)
                logits = judge.answer_logits(embeds, mask)
                p_true = judge.p_true(logits).detach()
                weights = torch.tensor(
                    [tasks[p.response].criteria[p.criterion].weight for p in rows], device=p_true.device
                )
                credit = (p_true if self.soft else (p_true > 0.5).float()) * (weights != 0)
                credited = [
                    r for r, pair in enumerate(rows) if (force or credit[r] > 0) and len(pair.input_ids[pair.span]) > 0
                ]
                grads = inputs = None
                if credited:
                    grads, inputs = self._input_gradients(method, embeds, logits, mask, credited, true_id, false_id)
            width = input_ids.shape[1]
            for r, (pair, p) in enumerate(zip(rows, p_true.tolist())):
                self._check_p_true(p, tasks[pair.response], pair)
                pair.p_true = p
                if grads is None or r not in credited:
                    continue
                offset = width - len(pair.input_ids)
                positions = slice(offset + pair.span.start, offset + pair.span.stop)
                g, x = grads[r, positions], inputs[r, positions]
                if not torch.isfinite(g).all():
                    task = tasks[pair.response]
                    raise FloatingPointError(
                        f"task {task.task_id}: the judge gradient for criterion "
                        f"{task.criteria[pair.criterion].criterion!r} is not finite (NaN or inf); "
                        f"run the judge in float32 or check the model's weights"
                    )
                pair.alpha = method.alpha(g, x, g.shape[0], self.tau).cpu()

    def _input_gradients(self, method, embeds, logits, mask, credited, true_id, false_id):
        """(g, x) for every row: the gradient of the method's objective with respect to the input
        embeddings (averaged along the path for integrated gradients) and the inputs it multiplies."""
        judge = self.judge
        baseline = judge.null_embedding().to(embeds.dtype) if method.baseline == "mean" else None
        if method.steps == 1:
            objective = method.objective_of(logits, true_id, false_id)
            (grads,) = torch.autograd.grad(objective[credited].sum(), embeds)
        else:
            grads = torch.zeros_like(embeds)
            start = torch.zeros_like(embeds) if baseline is None else baseline.expand_as(embeds)
            for step in range(1, method.steps + 1):
                point = (start + (embeds.detach() - start) * (step / method.steps)).requires_grad_(True)
                objective = method.objective_of(judge.answer_logits(point, mask), true_id, false_id)
                (g,) = torch.autograd.grad(objective[credited].sum(), point)
                grads += g / method.steps
        inputs = embeds.detach() if baseline is None else embeds.detach() - baseline
        return grads, inputs

    @staticmethod
    def _check_p_true(p: float, task: Task, pair: _Pair) -> None:
        if not math.isfinite(p):
            raise FloatingPointError(
                f"task {task.task_id}: the judge's p_true for criterion "
                f"{task.criteria[pair.criterion].criterion!r} is {p} (its logits are not finite); "
                f"check the model's weights (a corrupted cache? see g2r_env.models.cache_dir)"
            )

    def _assemble(
        self,
        i: int,
        task: Task,
        response: list[int],
        content: list[int],
        pairs: list[_Pair],
        token_map,
        dense: bool = True,
    ) -> ScoreResult:
        length = len(response)
        norm = task.max_score
        token_rewards = np.zeros(length, dtype=np.float64)
        sequence_reward = 0.0
        criteria = []
        for pair in (p for p in pairs if p.response == i):
            criterion = task.criteria[pair.criterion]
            met = pair.p_true > 0.5
            credit = pair.p_true if self.soft else float(met)
            share = criterion.weight * credit / norm
            alpha = None
            if share != 0:
                alpha = self._full_alpha(pair.alpha, length, len(content), token_map, dense)
                token_rewards += share * alpha
                sequence_reward += share
            criteria.append(
                {
                    "criterion": criterion.criterion,
                    "weight": criterion.weight,
                    "met": met,
                    "p_true": pair.p_true,
                    "alpha": None if alpha is None else alpha.astype(np.float32),
                }
            )
        return ScoreResult(
            task.task_id,
            np.asarray(response, dtype=np.int64),
            token_rewards.astype(np.float32),
            float(sequence_reward),
            criteria,
        )

    def _full_alpha(
        self, alpha: Optional[torch.Tensor], length: int, content_length: int, token_map, dense: bool = True
    ) -> np.ndarray:
        """Credit over all response tokens (trailing stop tokens included) as float64."""
        method = self.attribution if dense else get_attribution("last_token")
        if not method.needs_grad:
            return method.weights(length).double().numpy()
        full = np.zeros(length, dtype=np.float64)
        if alpha is None or content_length == 0:  # nothing to attribute to: credit the last token
            full[-1] = 1.0
            return full
        alpha = alpha.double().numpy()
        full[:content_length] = alpha if token_map is None else token_map @ alpha
        return full

    # ----------------------------------------------------------------------------------------
    def _retokenize(self, content: list[int]) -> tuple[list[int], np.ndarray]:
        """Judge token ids for a policy response and the [policy x judge] overlap map.

        Column j of the map spreads judge token j's credit over the policy tokens whose characters
        it overlaps, in proportion to the overlap; every column sums to 1, so sums are kept.
        """
        policy_tok, judge_tok = self.policy_tokenizer, self.judge.tokenizer
        pieces = token_pieces(policy_tok, content)
        ends = np.cumsum([len(p) for p in pieces]).tolist()
        starts = [0] + ends[:-1]
        text = "".join(pieces)
        encoded = judge_tok(text, add_special_tokens=False, return_offsets_mapping=True)
        judge_ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        token_map = np.zeros((len(content), len(judge_ids)), dtype=np.float64)
        for j, (a, b) in enumerate(offsets):
            for t, (s, e) in enumerate(zip(starts, ends)):
                token_map[t, j] = max(0, min(b, e) - max(a, s))
            if token_map[:, j].sum() == 0:  # an empty span: give it to the token holding its start
                token_map[min(int(np.searchsorted(ends, a, side="right")), len(content) - 1), j] = 1.0
            token_map[:, j] /= token_map[:, j].sum()
        return judge_ids, token_map
