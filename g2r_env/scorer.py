"""Grad2Reward: judge verdicts turned into per-token rewards with one backward pass (README, "The reward", steps 1-4).

For a task with rubric items (c_k, w_k) and a response, each criterion is judged (p_k, met_k), the
sequence reward is R = sum_k w_k met_k / sum_k max(w_k, 0), and each met criterion's share
w_k met_k / sum max(w, 0) is spread over the response tokens by its attribution alpha_k. The token
rewards therefore sum to R. This module is the one reward path: the env, the vector env and the
bundled agents all call ``Grad2Reward.score_batch``.

Criteria with an exact check (a criterion's ``check``, or one its wording states: ``tasks.checks``)
are decided by code: the check on the response text gives p_true 1 or 0, the pair never reaches the
judge, and its credit is spread evenly over the tokens of the span that decides it (the phrase, the
title line, the question; the whole response for counts, lists and what is avoided).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from tasks import Task
from tasks.checks import Check

from .attribution import Attribution, Tau, check_tau, get_attribution
from .judge import Judge
from .models import stop_token_ids
from .packing import Pack, batches_of_packs, packed_answer_logits
from .tokens import token_pieces

CREDIT_PATHS = ("cached", "pairs", "batched")


@dataclass
class ScoreResult:
    """The judged reward of one response.

    Attributes:
        task_id: the task's id.
        response_ids: the response as policy token ids (including a final stop token, if any).
        token_rewards: float32, one per response token; sums to ``sequence_reward``.
        sequence_reward: R, in [min weight share, 1].
        criteria: per rubric item a dict with ``criterion``, ``weight``, ``met`` (bool),
            ``p_true`` (float), ``alpha`` (float32 credit over the response tokens, or None for
            a criterion that earned no credit) and ``decided_by`` ("judge", or "check" for a
            criterion decided by its exact check).
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
    alpha: Optional[torch.Tensor] = None  # over judge tokens; over policy tokens for a pair decided by a check
    check: Optional[Check] = None  # the exact check that decides the pair (it is then not judged)


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
        shared_prefix: judge the criteria of one response in one packed pass over their shared judge
            input (the default); False runs every (response, criterion) pair on its own, as a
            reference (same verdicts and rewards, slower).
        credit: with ``shared_prefix``, how the credited criteria get their gradients (the same
            credit each way; ``benchmarks/judge_cost.py`` times them):
            ``"cached"`` (default): the judge input before the response (frame and question) runs
            once per question, without a graph, into key/values that every criterion of the G
            responses reads; each credited pair's response and criterion tokens run as a row over
            them, rows batched up to ``Judge.credit_tokens``, with one backward pass that stops at
            the response (a method with several path steps, such as ``integrated_gradients``,
            moves the whole judge input along its path and runs as ``"pairs"``).
            ``"pairs"``: each credited pair runs its own forward and backward pass over its whole
            judge input. ``"batched"``: the credited criteria of one response run as one packed
            forward and one batched backward pass (a vector-Jacobian product each,
            ``is_grads_batched``).
        checks: decide criteria that have an exact check (``Criterion.exact_check``: their own
            ``check`` field, or a wording such as "Is under 150 words") by that check on the response
            text, with credit on the span that decides it; False sends every criterion to the judge.
            Attributions that read no gradient (``uniform``, ``last_token``) and sparse scoring
            place a decided criterion's credit as they place a judged one's.
        share_question: with ``shared_prefix``, the verdicts of several responses to one question
            (the G responses of a prompt) run their packs over the frame and question computed once
            as key/values, as the ``"cached"`` credit path does; False packs each response's whole
            judge input (the same verdicts; ``benchmarks/judge_cost.py`` times both).
    """

    def __init__(
        self,
        judge: Judge,
        attribution: str = "grad_x_embed",
        tau: Tau = "auto",
        soft: bool = False,
        policy_tokenizer=None,
        progress: bool = False,
        shared_prefix: bool = True,
        credit: str = "cached",
        checks: bool = True,
        share_question: bool = True,
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
        self.shared_prefix = shared_prefix
        if credit not in CREDIT_PATHS:
            raise ValueError(f"credit must be one of {', '.join(CREDIT_PATHS)}, got {credit!r}")
        self.credit = credit
        if not isinstance(checks, bool):
            raise ValueError(f"checks must be True or False, got {checks!r}")
        self.checks = checks
        if not isinstance(share_question, bool):
            raise ValueError(f"share_question must be True or False, got {share_question!r}")
        self.share_question = share_question

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
        contents, pairs, maps = self._build_pairs(tasks, responses, self.checks)
        self._run_judge([pair for pair in pairs if pair.check is None], tasks, dense=dense)
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
        _, pairs, _ = self._build_pairs(tasks, responses, checks=False)
        self._run_judge(pairs, tasks, force=True)
        return [(pair.p_true, None if pair.alpha is None else pair.alpha.double().numpy()) for pair in pairs]

    # ----------------------------------------------------------------------------------------
    def _build_pairs(self, tasks, responses, checks: bool):
        """Per response its content (stop tokens dropped) and judge-token map, and a pair per
        criterion: a judge input, or (``checks``) the verdict and credit of its exact check."""
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
            decided = {k: c.exact_check for k, c in enumerate(task.criteria)} if checks else {}
            decided = {k: check for k, check in decided.items() if check is not None}
            pieces = None
            if decided or self.policy_tokenizer is not None:
                pieces = token_pieces(self.policy_tokenizer or self.judge.tokenizer, content)
            for k, check in decided.items():
                p_true, alpha = self._check_verdict(check, pieces)
                pairs.append(_Pair(i, k, [], slice(0, 0), p_true, alpha, check))
            judged, token_map = content, None
            if self.policy_tokenizer is not None and len(decided) < len(task.criteria):
                judged, token_map = self._retokenize(content, pieces)
            maps.append(token_map)
            for k, criterion in enumerate(task.criteria):
                if k in decided:
                    continue
                ids, span = self.judge.build_input(task, criterion.criterion, judged)
                if len(ids) > self.judge.max_length:
                    raise ValueError(self.judge.context_error(task, criterion.criterion, len(judged)))
                pairs.append(_Pair(i, k, ids, span))
        return contents, pairs, maps

    @staticmethod
    def _check_verdict(check: Check, pieces: list[str]) -> tuple[float, Optional[torch.Tensor]]:
        """(p_true, alpha) of a criterion decided by ``check`` on the response whose tokens add
        ``pieces``: p_true is 1.0 or 0.0; a met check's alpha is uniform over the tokens that overlap
        the characters deciding it (``Check.evidence``), or over all tokens when the whole response
        decides it; None when unmet or for an empty response."""
        text = "".join(pieces)
        if not check(text):
            return 0.0, None
        if not pieces:
            return 1.0, None
        ends = np.cumsum([len(p) for p in pieces])
        starts = ends - np.array([len(p) for p in pieces])
        on_span = np.ones(len(pieces), dtype=bool)
        spans = check.evidence(text)
        if spans:
            on_span = np.zeros(len(pieces), dtype=bool)
            for a, b in spans:
                on_span |= (starts < b) & (ends > a) & (ends > starts)
            if not on_span.any():
                on_span[:] = True
        return 1.0, torch.from_numpy(on_span / on_span.sum())

    def _run_judge(self, pairs: list[_Pair], tasks: Sequence[Task], dense: bool = True, force: bool = False) -> None:
        """Verdicts for every pair, then credit for the pairs that earn it.

        With ``shared_prefix`` the verdicts come from packed forward passes (each response's judge
        prefix once, every criterion over it) and only the credited pairs run a backward pass, the
        way ``credit`` says (see the class); otherwise every pair runs its own forward (and backward)
        pass.
        ``dense=False`` runs forward passes only; ``force=True`` attributes every pair, met or not
        (to study where credit would land).
        """
        gradients = dense and self.attribution.needs_grad
        if not self.shared_prefix:
            self._judge_pairs(pairs, tasks, verdicts=True, gradients=gradients, force=force)
            return
        self._packed_verdicts(pairs, tasks)
        if gradients:
            credited = [p for p in pairs if (force or self._credit(p, tasks) > 0) and p.span.stop > p.span.start]
            if self.credit == "cached" and self.attribution.steps == 1:
                self._cached_credit(credited, tasks)
            elif self.credit == "batched":
                self._packed_credit(credited, tasks)
            else:
                self._judge_pairs(credited, tasks, verdicts=False, gradients=True, force=True)

    def _credit(self, pair: _Pair, tasks: Sequence[Task]) -> float:
        """The pair's share of credit before weighting: p_true (soft) or the 0/1 verdict, 0 for a zero weight."""
        if tasks[pair.response].criteria[pair.criterion].weight == 0:
            return 0.0
        return pair.p_true if self.soft else float(pair.p_true > 0.5)

    def _packed_verdicts(self, pairs: list[_Pair], tasks: Sequence[Task]) -> None:
        """p_true of every pair from packed forward passes: the pairs of one response share the judge
        input up to the end of the response (``g2r_env.packing``), batched by token count. With
        ``share_question``, where several responses answer one question the judge input before the
        response (frame and question) runs once into key/values and their packs run over it."""
        judge = self.judge
        alone, questions = [], {}
        for pack in self._packs(pairs):
            before = tuple(pairs[pack.cases[0]].input_ids[: pairs[pack.cases[0]].span.start])
            questions.setdefault(before if self.share_question else (), []).append(pack)
        batches = []  # (past ids, packs)
        for before, packs in questions.items():
            if len(packs) < 2 or not before:
                alone += packs
                continue
            cut = [Pack(p.prefix[len(before) :], p.suffixes, p.cases) for p in packs]
            batches += [(before, batch) for batch in batches_of_packs(cut, judge.batch_tokens)]
        batches += [((), batch) for batch in batches_of_packs(alone, judge.batch_tokens)]
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="judging", unit="batch")
        past, past_of = None, ()
        with torch.no_grad():
            for before, batch in batches:
                if before != past_of:  # the batches of one question follow each other
                    ids = torch.tensor([before], dtype=torch.long, device=judge.device)
                    past, past_of = (judge.prefix_states(ids) if before else None), before
                logits, order = packed_answer_logits(judge.model, judge, batch, past=past)
                for n, p in zip(order, judge.p_true(logits).tolist()):
                    self._check_p_true(p, tasks[pairs[n].response], pairs[n])
                    pairs[n].p_true = p

    @staticmethod
    def _packs(pairs: list[_Pair]) -> list[Pack]:
        """The pairs grouped by response: the judge input up to the end of the response is the pack's
        prefix (shared when the template puts the criterion after the response), the rest a suffix."""
        packs: dict[tuple, Pack] = {}
        for n, pair in enumerate(pairs):
            key = (pair.response, tuple(pair.input_ids[: pair.span.stop]))
            pack = packs.get(key)
            if pack is None:
                pack = packs[key] = Pack(pair.input_ids[: pair.span.stop], [], [])
            pack.suffixes.append(pair.input_ids[pair.span.stop :])
            pack.cases.append(n)
        return list(packs.values())

    def _packed_credit(self, pairs: list[_Pair], tasks: Sequence[Task]) -> None:
        """alpha for every pair: per response, one forward pass over its prefix and the pairs'
        suffixes, then the gradient of each pair's objective in one batched backward pass
        (``is_grads_batched``: a vector-Jacobian product per pair through the shared prefix). A
        response's pairs are split so that pairs x packed tokens stays within ``batch_tokens``."""
        judge, method = self.judge, self.attribution
        chunks = []
        for pack in self._packs(pairs):
            size = len(pack.prefix) + sum(map(len, pack.suffixes))
            per_chunk = max(1, judge.batch_tokens // size)
            for s in range(0, len(pack.cases), per_chunk):
                chunks.append(Pack(pack.prefix, pack.suffixes[s : s + per_chunk], pack.cases[s : s + per_chunk]))
        if self.progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="credit", unit="response")
        for pack in chunks:
            with torch.enable_grad(), self._read_states(method) as states:
                objectives, order, embeds = self._pack_objectives(pack)
                leaf = embeds if method.depth == 0 else states[0]
                grads, inputs = self._input_gradients(
                    method,
                    leaf,
                    objectives,
                    lambda point, pack=pack: self._pack_objectives(pack, point)[0],
                    mode="batched",
                )
            for j, n in enumerate(order):
                pair = pairs[n]
                self._set_alpha(pair, tasks, grads[j, 0, pair.span], inputs[0, pair.span])

    def _cached_credit(self, pairs: list[_Pair], tasks: Sequence[Task]) -> None:
        """alpha for every pair, the judge input before the response (frame and question) run once
        per distinct one, without a graph, into key/values: every criterion of every response to
        that question reads them. Each credited pair's own part (its response and criterion) is a
        row over those key/values, left-padded after them; rows are batched up to the judge's
        ``credit_tokens`` and one summed backward pass gives each row its own gradient (the rows
        share nothing that needs one)."""
        judge, method = self.judge, self.attribution
        questions: dict[tuple, list[int]] = {}
        for n, pair in enumerate(pairs):
            questions.setdefault(tuple(pair.input_ids[: pair.span.start]), []).append(n)
        chunks = []
        for before, ns in questions.items():
            ns.sort(key=lambda n: -len(pairs[n].input_ids))  # less padding
            chunk: list[int] = []
            for n in ns:
                width = len(pairs[chunk[0] if chunk else n].input_ids) - len(before)  # the widest row
                if chunk and (len(chunk) + 1) * width > judge.credit_tokens:
                    chunks.append((before, chunk))
                    chunk = []
                chunk.append(n)
            chunks.append((before, chunk))
        if self.progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="credit", unit="batch")
        true_id, false_id = judge.verdict_ids
        past, past_of = None, None
        for before, chunk in chunks:
            if before != past_of:  # the chunks of one question follow each other
                ids = torch.tensor([before], dtype=torch.long, device=judge.device)
                past, past_of = (judge.prefix_states(ids) if before else None), before
            rows = [pairs[n].input_ids[len(before) :] for n in chunk]
            input_ids, mask = judge.pad_batch(rows)
            width = input_ids.shape[1]
            with torch.enable_grad(), self._read_states(method) as states:
                embeds = judge.embed(input_ids)
                if method.depth == 0:
                    embeds = embeds.detach().requires_grad_(True)
                logits = judge.answer_logits(embeds, mask, past=past)
                leaf = embeds if method.depth == 0 else states[0]
                objectives = method.objective_of(logits, true_id, false_id)
                grads, inputs = self._input_gradients(method, leaf, objectives, None, mode="summed")
            for r, n in enumerate(chunk):
                span = pairs[n].span
                offset = width - len(rows[r]) - len(before)
                positions = slice(offset + span.start, offset + span.stop)
                self._set_alpha(pairs[n], tasks, grads[r, positions], inputs[r, positions])

    def _pack_objectives(self, pack: Pack, point: Optional[torch.Tensor] = None):
        """(objectives [cases], case order, input embeddings) of one pack; the embeddings require grad
        when the method reads the gradient there. ``point``: run on these embeddings instead."""
        judge, method = self.judge, self.attribution
        used = []

        def embed(ids):
            value = judge.embed(ids) if point is None else point
            if point is None and method.depth == 0:
                value = value.detach().requires_grad_(True)
            used.append(value)
            return value

        logits, order = packed_answer_logits(judge.model, judge, [pack], embed=embed)
        return method.objective_of(logits, *judge.verdict_ids), order, used[0]

    def _judge_pairs(
        self, pairs: list[_Pair], tasks: Sequence[Task], verdicts: bool, gradients: bool, force: bool
    ) -> None:
        """Each pair on its own, left-padded into micro-batches: its verdict (``verdicts``), and for
        the pairs that earn credit (all of them with ``force``) one backward pass and alpha."""
        judge, method = self.judge, self.attribution
        true_id, false_id = judge.verdict_ids
        order = sorted(range(len(pairs)), key=lambda j: -len(pairs[j].input_ids))  # less padding
        batches = [order[s : s + judge.micro_batch_size] for s in range(0, len(order), judge.micro_batch_size)]
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="credit" if not verdicts else "judging", unit="batch")
        for batch in batches:
            rows = [pairs[j] for j in batch]
            input_ids, mask = judge.pad_batch([p.input_ids for p in rows])
            if not gradients:
                with torch.no_grad():
                    p_true = judge.p_true(judge.answer_logits(judge.embed(input_ids), mask))
                for pair, p in zip(rows, p_true.tolist()):
                    self._check_p_true(p, tasks[pair.response], pair)
                    pair.p_true = p
                continue
            with torch.enable_grad(), self._read_states(method) as states:
                embeds = judge.embed(input_ids)
                if method.depth == 0:
                    embeds = embeds.detach().requires_grad_(True)
                logits = judge.answer_logits(embeds, mask)
                p_true = judge.p_true(logits).detach()
                if verdicts:
                    for pair, p in zip(rows, p_true.tolist()):
                        self._check_p_true(p, tasks[pair.response], pair)
                        pair.p_true = p
                credited = [
                    r
                    for r, pair in enumerate(rows)
                    if (force or self._credit(pair, tasks) > 0) and len(pair.input_ids[pair.span]) > 0
                ]
                if not credited:
                    continue
                leaf = embeds if method.depth == 0 else states[0]
                objectives = method.objective_of(logits, true_id, false_id)[credited]

                def objectives_at(point, mask=mask, credited=credited):
                    return method.objective_of(judge.answer_logits(point, mask), true_id, false_id)[credited]

                grads, inputs = self._input_gradients(method, leaf, objectives, objectives_at, mode="summed")
            width = input_ids.shape[1]
            for r in credited:
                pair = rows[r]
                offset = width - len(pair.input_ids)
                positions = slice(offset + pair.span.start, offset + pair.span.stop)
                self._set_alpha(pair, tasks, grads[r, positions], inputs[r, positions])

    def _set_alpha(self, pair: _Pair, tasks: Sequence[Task], g: torch.Tensor, x: torch.Tensor) -> None:
        """The pair's credit from its gradient g and inputs x at the response positions."""
        if not torch.isfinite(g).all():
            task = tasks[pair.response]
            raise FloatingPointError(
                f"task {task.task_id}: the judge gradient for criterion "
                f"{task.criteria[pair.criterion].criterion!r} is not finite (NaN or inf); "
                f"run the judge in float32 or check the model's weights"
            )
        pair.alpha = self.attribution.alpha(g, x, g.shape[0], self.tau).cpu()

    @contextlib.contextmanager
    def _read_states(self, method: Attribution):
        """For a method with ``depth > 0``: the hidden states entering decoder layer round(depth * layers)
        become a leaf that requires grad (collected in the yielded list), so the backward pass stops
        there and the layers below run without a graph."""
        states: list[torch.Tensor] = []
        if method.depth == 0:
            yield states
            return
        layers = self.judge.decoder_layers
        index = min(max(round(method.depth * len(layers)), 1), len(layers) - 1)

        def make_leaf(_module, args):
            leaf = args[0].detach().requires_grad_(True)
            states.append(leaf)
            return (leaf, *args[1:])

        handle = layers[index].register_forward_pre_hook(make_leaf)
        try:
            yield states
        finally:
            handle.remove()

    def _input_gradients(self, method, leaf, objectives, objectives_at, mode: str):
        """(g, x): the gradient of ``objectives`` (the method's objective per credited pair, from the
        forward pass just run) with respect to ``leaf`` (the input embeddings, or the hidden states
        of a method with depth), and the inputs it multiplies. For integrated gradients g is averaged
        over ``objectives_at`` points on the path from the baseline. ``mode``: ``"summed"``, the pairs
        sit in separate rows of ``leaf`` and one summed backward pass serves; ``"batched"``, they
        share ``leaf`` (one packed sequence), so each gets its own vector-Jacobian product in one
        batched backward pass, stacked first ([pairs, *leaf.shape])."""

        def grad_of(values, point):
            if mode == "summed":
                return torch.autograd.grad(values.sum(), point)[0]
            eye = torch.eye(len(values), dtype=values.dtype, device=values.device)
            return torch.autograd.grad(values, point, eye, is_grads_batched=True)[0]

        baseline = self.judge.null_embedding().to(leaf.dtype) if method.baseline == "mean" else None
        if method.steps == 1:
            grads = grad_of(objectives, leaf)
        else:
            grads = 0
            start = torch.zeros_like(leaf) if baseline is None else baseline.expand_as(leaf)
            for step in range(1, method.steps + 1):
                point = (start + (leaf.detach() - start) * (step / method.steps)).requires_grad_(True)
                grads = grads + grad_of(objectives_at(point), point) / method.steps
        inputs = leaf.detach() if baseline is None else leaf.detach() - baseline
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
        for pair in sorted((p for p in pairs if p.response == i), key=lambda p: p.criterion):
            criterion = task.criteria[pair.criterion]
            met = pair.p_true > 0.5
            credit = pair.p_true if self.soft else float(met)
            share = criterion.weight * credit / norm
            alpha = None
            if share != 0:
                alpha = self._full_alpha(
                    pair.alpha, length, len(content), None if pair.check is not None else token_map, dense
                )
                token_rewards += share * alpha
                sequence_reward += share
            criteria.append(
                {
                    "criterion": criterion.criterion,
                    "weight": criterion.weight,
                    "met": met,
                    "p_true": pair.p_true,
                    "alpha": None if alpha is None else alpha.astype(np.float32),
                    "decided_by": "judge" if pair.check is None else "check",
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
    def _retokenize(self, content: list[int], pieces: Optional[list[str]] = None) -> tuple[list[int], np.ndarray]:
        """Judge token ids for a policy response (whose tokens add ``pieces``, decoded here when
        None) and the [policy x judge] overlap map.

        Column j of the map spreads judge token j's credit over the policy tokens whose characters
        it overlaps, in proportion to the overlap; every column sums to 1, so sums are kept.
        """
        judge_tok = self.judge.tokenizer
        if pieces is None:
            pieces = token_pieces(self.policy_tokenizer, content)
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
