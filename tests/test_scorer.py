"""The judge and Grad2Reward against the formulas of the README's reward section, on a tiny float64 model."""

import numpy as np
import pytest
import torch
from tiny import build_tiny_model

from g2r_env import ATTRIBUTIONS, Grad2Reward, Judge
from g2r_env.attribution import softmax_with_temperature
from g2r_env.scorer import CREDIT_PATHS
from tasks import Criterion, Task


def encode(tokenizer, text, eos=True):
    return tokenizer.encode(text, add_special_tokens=False) + ([tokenizer.eos_token_id] if eos else [])


def log_p_true_at(judge, input_ids, embeds):
    mask = torch.ones_like(input_ids)
    logits = judge.answer_logits(embeds, mask)
    return torch.log_softmax(logits, -1)[0, judge.verdict_ids[0]]


def test_response_positions_hold_the_response_exactly(tiny_judge, rubric_task, bundled_tokenizer):
    response = encode(bundled_tokenizer, "Sunlight scatters off air molecules; blue scatters most. 😀", eos=False)
    ids, span = tiny_judge.build_input(rubric_task, rubric_task.criteria[0].criterion, response)
    assert ids[span] == response
    assert bundled_tokenizer.decode(ids[span]) == bundled_tokenizer.decode(response)
    text = bundled_tokenizer.decode(ids)
    assert rubric_task.question in text and rubric_task.criteria[0].criterion in text
    assert text.endswith("<|im_start|>assistant\n")  # the assistant turn opens right after
    true_id, false_id = tiny_judge.verdict_ids
    assert bundled_tokenizer.decode([true_id]) == "True" and bundled_tokenizer.decode([false_id]) == "False"


def test_input_gradient_matches_finite_difference(tiny_judge, rubric_task, bundled_tokenizer):
    response = encode(bundled_tokenizer, "Rayleigh scattering makes short wavelengths spread.", eos=False)
    ids, span = tiny_judge.build_input(rubric_task, rubric_task.criteria[0].criterion, response)
    input_ids = torch.tensor([ids])
    embeds = tiny_judge.embed(input_ids).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_p_true_at(tiny_judge, input_ids, embeds), embeds)
    direction = torch.zeros_like(embeds)
    direction[0, span] = torch.randn(
        len(response), embeds.shape[-1], generator=torch.Generator().manual_seed(0), dtype=embeds.dtype
    )
    h = 1e-5
    with torch.no_grad():
        f_plus = log_p_true_at(tiny_judge, input_ids, embeds + h * direction)
        f_minus = log_p_true_at(tiny_judge, input_ids, embeds - h * direction)
    finite_difference = (f_plus - f_minus) / (2 * h)
    assert float((grad * direction).sum()) == pytest.approx(float(finite_difference), rel=1e-6, abs=1e-9)


def test_grad_x_embed_credit_is_softmax_of_gradient_times_input(tiny_judge, rubric_task, bundled_tokenizer):
    response = encode(bundled_tokenizer, "Air molecules scatter blue light more than red light.")
    scorer = Grad2Reward(tiny_judge, soft=True)  # soft: every criterion is credited, so each has an alpha
    result = scorer.score(rubric_task, response)
    content = response[:-1]  # the final EOS is not shown to the judge
    for k, criterion in enumerate(rubric_task.criteria):
        ids, span = tiny_judge.build_input(rubric_task, criterion.criterion, content)
        input_ids = torch.tensor([ids])
        embeds = tiny_judge.embed(input_ids).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_p_true_at(tiny_judge, input_ids, embeds), embeds)
        b = (grad[0, span] * embeds[0, span]).sum(-1).detach().numpy()
        expected = np.exp((b - b.max()) / b.std()) / np.exp((b - b.max()) / b.std()).sum()
        alpha = result.criteria[k]["alpha"]
        assert alpha[-1] == 0.0  # the EOS gets no credit
        np.testing.assert_allclose(alpha[:-1], expected, rtol=1e-4, atol=1e-7)


def test_softmax_temperature_by_hand():
    scores = torch.tensor([1.0, 2.0, 4.0])
    std = np.std([1.0, 2.0, 4.0])  # population std, tau="auto"
    expected = np.exp(np.array([1.0, 2.0, 4.0]) / std)
    np.testing.assert_allclose(softmax_with_temperature(scores, "auto").numpy(), expected / expected.sum(), rtol=1e-6)
    expected = np.exp(np.array([1.0, 2.0, 4.0]) / 0.5)
    np.testing.assert_allclose(softmax_with_temperature(scores, 0.5).numpy(), expected / expected.sum(), rtol=1e-6)
    np.testing.assert_allclose(softmax_with_temperature(torch.tensor([3.0, 3.0]), "auto").numpy(), [0.5, 0.5])
    with pytest.raises(ValueError, match="tau"):
        softmax_with_temperature(scores, -1.0)


def test_aggregation_with_negative_weights_by_hand(tiny_judge, bundled_tokenizer):
    task = Task("agg", "Q", (Criterion("a", 3.0), Criterion("b", 1.0), Criterion("c", -2.0), Criterion("d", 2.0)))
    p_true = {"a": 0.9, "b": 0.2, "c": 0.7, "d": 0.6}
    response = encode(bundled_tokenizer, "one two three four five")
    scorer = Grad2Reward(tiny_judge, attribution="uniform")
    original = tiny_judge.p_true
    order = []

    def forced(logits):  # the rows of one micro-batch, in the scorer's (length-sorted) order
        return torch.tensor([p_true[c] for c in order[: logits.shape[0]]], dtype=torch.float64)

    build = tiny_judge.build_input

    def recording_build(task_, criterion, ids):
        order.append(criterion)
        return build(task_, criterion, ids)

    tiny_judge.build_input, tiny_judge.p_true = recording_build, forced
    try:
        result = scorer.score(task, response)
    finally:
        del tiny_judge.build_input, tiny_judge.p_true
    assert tiny_judge.p_true == original
    # all four pairs have the same length, so one micro-batch holds them in build order
    norm = 3.0 + 1.0 + 2.0  # sum of positive weights
    expected_R = (3.0 * 1 + 1.0 * 0 + (-2.0) * 1 + 2.0 * 1) / norm
    assert result.sequence_reward == pytest.approx(expected_R)
    assert [c["met"] for c in result.criteria] == [True, False, True, True]
    T = len(response)
    np.testing.assert_allclose(result.token_rewards, np.full(T, expected_R / T), rtol=1e-6)
    assert result.criteria[1]["alpha"] is None

    soft = Grad2Reward(tiny_judge, attribution="last_token", soft=True)
    order.clear()
    tiny_judge.build_input, tiny_judge.p_true = recording_build, forced
    try:
        result = soft.score(task, response)
    finally:
        del tiny_judge.build_input, tiny_judge.p_true
    expected_soft = (3.0 * 0.9 + 1.0 * 0.2 - 2.0 * 0.7 + 2.0 * 0.6) / norm
    assert result.sequence_reward == pytest.approx(expected_soft)
    assert result.token_rewards[-1] == pytest.approx(expected_soft) and not result.token_rewards[:-1].any()


@pytest.mark.parametrize("attribution", sorted(ATTRIBUTIONS))
def test_token_rewards_sum_to_sequence_reward(tiny_judge, rubric_task, bundled_tokenizer, attribution):
    responses = [
        encode(bundled_tokenizer, text)
        for text in ["Blue light scatters more.", "The ocean reflects into the sky, obviously, always.", "Short"]
    ]
    scorer = Grad2Reward(tiny_judge, attribution=attribution, soft=True)
    for result, response in zip(scorer.score_batch([rubric_task] * 3, responses), responses):
        assert len(result.token_rewards) == len(response)
        assert result.token_rewards.dtype == np.float32
        assert float(result.token_rewards.sum()) == pytest.approx(result.sequence_reward, abs=1e-6)
        weights = np.array([c.weight for c in rubric_task.criteria])
        p = np.array([c["p_true"] for c in result.criteria])
        assert result.sequence_reward == pytest.approx(float((weights * p).sum() / 4.0))


def test_grad_norm_variants_follow_their_formulas(tiny_judge, rubric_task, bundled_tokenizer):
    response = encode(bundled_tokenizer, "Scattering of sunlight by the air.", eos=False)
    criterion = rubric_task.criteria[0].criterion
    ids, span = tiny_judge.build_input(rubric_task, criterion, response)
    input_ids = torch.tensor([ids])
    embeds = tiny_judge.embed(input_ids).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_p_true_at(tiny_judge, input_ids, embeds), embeds)
    g = grad[0, span]
    for name, scores in (("grad_l1", g.abs().sum(-1)), ("grad_l2", g.norm(dim=-1))):
        result = Grad2Reward(tiny_judge, attribution=name, tau=0.01, soft=True).score(rubric_task, response)
        expected = torch.softmax(scores.float() / 0.01, 0).numpy()
        np.testing.assert_allclose(result.criteria[0]["alpha"], expected, rtol=1e-4, atol=1e-6)


def test_batched_scoring_equals_one_at_a_time(tiny_judge, rubric_task, bundled_tokenizer):
    other = Task("t-2", "Name a fruit.", (Criterion("Names a fruit", 1.0), Criterion("Is rude", -1.0)))
    tasks = [rubric_task, other, rubric_task]
    responses = [
        encode(bundled_tokenizer, t)
        for t in ["Because of Rayleigh scattering of sunlight in air.", "Apple.", "It reflects the sea."]
    ]
    scorer = Grad2Reward(tiny_judge, soft=True)
    batched = scorer.score_batch(tasks, responses)
    for task, response, together in zip(tasks, responses, batched):
        alone = scorer.score(task, response)
        assert together.sequence_reward == pytest.approx(alone.sequence_reward, abs=1e-9)
        np.testing.assert_allclose(together.token_rewards, alone.token_rewards, atol=1e-6)


def test_judge_stays_frozen(tiny_judge, rubric_task, bundled_tokenizer):
    before = {k: v.clone() for k, v in tiny_judge.model.state_dict().items()}
    Grad2Reward(tiny_judge, soft=True).score(rubric_task, encode(bundled_tokenizer, "Scattering."))
    assert all(not p.requires_grad and p.grad is None for p in tiny_judge.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in tiny_judge.model.state_dict().items())


def test_bad_responses_get_clear_errors(bundled_tokenizer, rubric_task):
    judge = Judge(build_tiny_model(len(bundled_tokenizer), max_positions=160), bundled_tokenizer)
    scorer = Grad2Reward(judge)
    with pytest.raises(ValueError, match="t-1: empty response"):
        scorer.score(rubric_task, [])
    with pytest.raises(ValueError, match="token id 99999999 is outside the vocabulary"):
        scorer.score(rubric_task, [5, 99999999])
    with pytest.raises(ValueError, match=r"longer than the judge's context of 160; lower max_new_tokens"):
        scorer.score(rubric_task, [300] * 200)


def test_nan_gradient_is_reported(bundled_tokenizer, rubric_task):
    judge = Judge(build_tiny_model(len(bundled_tokenizer)), bundled_tokenizer)
    layer = judge.model.model.layers[0]
    handle = layer.register_full_backward_pre_hook(
        lambda module, grad_out: tuple(torch.full_like(g, float("nan")) if g is not None else None for g in grad_out)
    )
    try:
        with pytest.raises(FloatingPointError, match=r"t-1: the judge gradient for criterion .* is not finite"):
            Grad2Reward(judge, soft=True).score(rubric_task, encode(bundled_tokenizer, "Scattering."))
    finally:
        handle.remove()


def test_empty_content_credits_the_stop_token(tiny_judge, rubric_task, bundled_tokenizer):
    result = Grad2Reward(tiny_judge, soft=True).score(rubric_task, [bundled_tokenizer.eos_token_id])
    assert result.token_rewards[0] == pytest.approx(result.sequence_reward)


def char_tokenizer():
    """A character-level fast tokenizer built in code: a policy vocabulary unlike the judge's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = [chr(c) for c in range(32, 127)]
    vocab = {"<eos>": 0, **{ch: n + 1 for n, ch in enumerate(alphabet)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")


def test_foreign_policy_tokenizer_maps_credit_by_characters(tiny_judge, rubric_task):
    policy = char_tokenizer()
    text = "Sunlight scatters; blue wins."
    response = policy.encode(text) + [policy.eos_token_id]
    assert policy.decode(response[:-1]) == text
    scorer = Grad2Reward(tiny_judge, soft=True, policy_tokenizer=policy)
    result = scorer.score(rubric_task, response)
    assert len(result.token_rewards) == len(response)
    assert float(result.token_rewards.sum()) == pytest.approx(result.sequence_reward, abs=1e-6)
    judge_ids, token_map = scorer._retokenize(response[:-1])
    assert tiny_judge.tokenizer.decode(judge_ids) == text
    np.testing.assert_allclose(token_map.sum(0), 1.0)
    # each character token receives credit only from the judge token that contains it
    offsets = tiny_judge.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for j, (a, b) in enumerate(offsets):
        np.testing.assert_allclose(token_map[a:b, j], 1.0 / (b - a))
        assert token_map[:, j].sum() == pytest.approx(token_map[a:b, j].sum())


def _input_gradient(judge, input_ids, embeds, objective):
    mask = torch.ones_like(input_ids)
    logits = judge.answer_logits(embeds, mask)
    true_id, false_id = judge.verdict_ids
    value = (
        logits[0, true_id] - logits[0, false_id] if objective == "margin" else torch.log_softmax(logits, -1)[0, true_id]
    )
    (grad,) = torch.autograd.grad(value, embeds)
    return grad


def test_research_attributions_follow_their_formulas(tiny_judge, rubric_task, bundled_tokenizer):
    response = encode(bundled_tokenizer, "Scattering of sunlight by the air makes it blue.", eos=False)
    criterion = rubric_task.criteria[0].criterion
    ids, span = tiny_judge.build_input(rubric_task, criterion, response)
    input_ids = torch.tensor([ids])
    embeds = tiny_judge.embed(input_ids).detach()
    null = tiny_judge.model.get_input_embeddings().weight.mean(0)
    grad = _input_gradient(tiny_judge, input_ids, embeds.clone().requires_grad_(True), "log_p_true")[0, span]
    margin_grad = _input_gradient(tiny_judge, input_ids, embeds.clone().requires_grad_(True), "margin")[0, span]
    e, delta = embeds[0, span], embeds[0, span] - null
    path = torch.zeros_like(embeds)
    for step in range(1, 9):  # integrated gradients: 8 points from the null embedding to the input
        point = (null + (embeds - null) * step / 8).requires_grad_(True)
        path += _input_gradient(tiny_judge, input_ids, point, "log_p_true") / 8
    l2 = grad.norm(dim=-1)
    window = torch.stack(
        [
            l2[max(0, t - 2) : t + 3].mean()
            if 2 <= t < len(l2) - 2
            else torch.cat([l2[:1].expand(2), l2, l2[-1:].expand(2)])[t : t + 5].mean()
            for t in range(len(l2))
        ]
    )
    expected_scores = {
        "abs_grad_x_embed": (grad * e).sum(-1).abs(),
        "contrastive_grad_x_embed": (margin_grad * e).sum(-1),
        "contrastive_grad_l2": margin_grad.norm(dim=-1),
        "grad_x_delta": (grad * delta).sum(-1),
        "integrated_gradients": (path[0, span] * delta).sum(-1),
        "grad_l2_window5": window,
    }
    for name, scores in expected_scores.items():
        result = Grad2Reward(tiny_judge, attribution=name, tau=0.05, soft=True).score(rubric_task, response)
        expected = torch.softmax(scores.float() / 0.05, 0).numpy()
        np.testing.assert_allclose(result.criteria[0]["alpha"], expected, rtol=1e-4, atol=1e-6, err_msg=name)


def test_unknown_credit_path_and_credit_budget_are_refused(tiny_judge, bundled_tokenizer):
    with pytest.raises(ValueError, match="credit must be one of cached, pairs, batched, got 'fast'"):
        Grad2Reward(tiny_judge, credit="fast")
    with pytest.raises(ValueError, match="credit_tokens must be >= 1, got 0"):
        Judge(tiny_judge.model, bundled_tokenizer, credit_tokens=0)


# ---- shared-prefix scoring equals judging every pair on its own ----------------------------------
def _assert_same_results(shared, alone, rtol=1e-5, atol_p=1e-5, scale_atol=0.0):
    """``scale_atol``: an absolute tolerance on token rewards, relative to the response's largest one
    (for float32 judges, where a token's reward near zero carries the rounding of its neighbours')."""
    for a, b in zip(shared, alone):
        assert a.sequence_reward == pytest.approx(b.sequence_reward, rel=rtol, abs=1e-7)
        atol = max(1e-7, scale_atol * float(np.abs(b.token_rewards).max(initial=0.0)))
        np.testing.assert_allclose(a.token_rewards, b.token_rewards, rtol=rtol, atol=atol)
        for ca, cb in zip(a.criteria, b.criteria):
            assert ca["met"] == cb["met"]
            assert ca["p_true"] == pytest.approx(cb["p_true"], abs=atol_p)
            if cb["alpha"] is None:
                assert ca["alpha"] is None
            else:
                np.testing.assert_allclose(ca["alpha"], cb["alpha"], rtol=rtol, atol=1e-7)


def _ragged_batch(tokenizer, rubric_task):
    other = Task(
        "t-2", "Name a fruit and say why it is good.", (Criterion("Names a fruit", 2.0), Criterion("Is rude", -1.0))
    )
    texts = [
        "Because of Rayleigh scattering of sunlight in the air, blue light is spread the most.",
        "Apple.",
        "It reflects the sea.",
        "Bananas are good: they carry potassium and are easy to pack for a long walk.",
        "Blue.",
    ]
    tasks = [rubric_task, other, rubric_task, other, rubric_task]
    return tasks, [encode(tokenizer, t) for t in texts]


@pytest.mark.parametrize("soft", [True, False])
@pytest.mark.parametrize("attribution", sorted(ATTRIBUTIONS))
def test_shared_prefix_scoring_equals_pairs_alone(bundled_tokenizer, rubric_task, attribution, soft):
    # small token budgets put several responses in some packed batches (and several padded rows in
    # some cached-credit batches) and split others apart
    judge = Judge(
        build_tiny_model(len(bundled_tokenizer), seed=3, dtype=torch.float64),
        bundled_tokenizer,
        micro_batch_size=3,
        batch_tokens=300,
        credit_tokens=120,
    )
    tasks, responses = _ragged_batch(bundled_tokenizer, rubric_task)
    for dense in (True, False):
        alone = Grad2Reward(judge, attribution=attribution, soft=soft, shared_prefix=False).score_batch(
            tasks, responses, dense=dense
        )
        for credit in CREDIT_PATHS:
            for share in (True, False):
                scorer = Grad2Reward(judge, attribution=attribution, soft=soft, credit=credit, share_question=share)
                _assert_same_results(scorer.score_batch(tasks, responses, dense=dense), alone)


def test_verdicts_share_the_question_across_responses(bundled_tokenizer, rubric_task, monkeypatch):
    # five responses to two questions: the frame and question run once per question into key/values
    # (the tiny batch budget splits one question's packs over several batches, which reuse them)
    judge = Judge(
        build_tiny_model(len(bundled_tokenizer), seed=3, dtype=torch.float64), bundled_tokenizer, batch_tokens=200
    )
    tasks, responses = _ragged_batch(bundled_tokenizer, rubric_task)
    runs = []
    monkeypatch.setattr(
        judge, "prefix_states", lambda ids, run=judge.prefix_states: runs.append(ids.shape[1]) or run(ids)
    )
    scores = {}
    for share in (True, False):
        runs.clear()
        scores[share] = Grad2Reward(judge, share_question=share).score_batch(tasks, responses, dense=False)
        assert len(runs) == (2 if share else 0), runs
    _assert_same_results(scores[True], scores[False], atol_p=1e-12)
    with pytest.raises(ValueError, match="share_question"):
        Grad2Reward(judge, share_question="yes")


def test_shared_prefix_scoring_equals_pairs_alone_with_another_tokenizer(tiny_judge, rubric_task):
    policy = char_tokenizer()
    tasks, _ = _ragged_batch(tiny_judge.tokenizer, rubric_task)
    texts = ["Sunlight scatters; blue wins.", "Apple!", "Sea.", "Pears, since they are sweet.", "Blue sky."]
    responses = [policy.encode(t) + [policy.eos_token_id] for t in texts]
    for attribution in ("grad_x_embed", "contrastive_grad_l2", "uniform"):
        alone = Grad2Reward(
            tiny_judge, attribution=attribution, soft=True, policy_tokenizer=policy, shared_prefix=False
        ).score_batch(tasks, responses)
        for credit in CREDIT_PATHS:
            scorer = Grad2Reward(tiny_judge, attribution=attribution, soft=True, policy_tokenizer=policy, credit=credit)
            _assert_same_results(scorer.score_batch(tasks, responses), alone)


def test_depth_attribution_reads_the_gradient_at_a_hidden_layer(tiny_judge, rubric_task, bundled_tokenizer):
    # the tiny judge has 2 layers: depth 0.5 reads the states entering layer 1 (hidden_states[1])
    response = encode(bundled_tokenizer, "Scattering of sunlight by the air.", eos=False)
    ids, span = tiny_judge.build_input(rubric_task, rubric_task.criteria[0].criterion, response)
    input_ids = torch.tensor([ids])
    embeds = tiny_judge.embed(input_ids).detach().requires_grad_(True)
    out = tiny_judge.model(inputs_embeds=embeds, output_hidden_states=True, use_cache=False)
    true_id, false_id = tiny_judge.verdict_ids
    state = out.hidden_states[1]
    logits = out.logits[0, -1]
    (grad,) = torch.autograd.grad(logits[true_id] - logits[false_id], state)
    expected = torch.softmax(grad[0, span].norm(dim=-1) / 0.01, 0).numpy()
    for shared, credit in [(True, c) for c in CREDIT_PATHS] + [(False, "pairs")]:
        scorer = Grad2Reward(
            tiny_judge,
            attribution="contrastive_grad_l2_d50",
            tau=0.01,
            soft=True,
            shared_prefix=shared,
            credit=credit,
        )
        np.testing.assert_allclose(scorer.score(rubric_task, response).criteria[0]["alpha"], expected, rtol=1e-6)
    # and it differs from the same rule read at the input embeddings
    full = Grad2Reward(tiny_judge, attribution="contrastive_grad_l2", tau=0.01, soft=True).score(rubric_task, response)
    assert not np.allclose(full.criteria[0]["alpha"], expected, rtol=1e-3)


@pytest.mark.slow
def test_shared_prefix_scoring_equals_pairs_alone_on_the_bundled_judge():
    from tasks import load_taskset

    judge = Judge.load("bundled", device="cpu")
    tasks = list(load_taskset("openended-mini"))[:3]
    tasks.append(tasks[0])  # two responses to one question share its frame and question
    texts = [
        "Here is a short answer with two points.\n1. First point.\n2. Second point.",
        "Sure! I think the best way is to start small, keep notes, and ask for help when you need it.",
        "No.",
        "Start with the basics, then practise a little every day.",
    ]
    responses = [encode(judge.tokenizer, t) for t in texts]
    for attribution in ("grad_x_embed", "contrastive_grad_l2"):
        alone = Grad2Reward(judge, attribution=attribution, soft=True, shared_prefix=False).score_batch(
            tasks, responses
        )
        for credit in CREDIT_PATHS:
            shared = Grad2Reward(judge, attribution=attribution, soft=True, credit=credit)
            # float32: the summation order of a 30-layer backward differs between the paths
            _assert_same_results(shared.score_batch(tasks, responses), alone, rtol=5e-4, atol_p=1e-5, scale_atol=1e-4)
    sparse = [
        Grad2Reward(judge, shared_prefix=flag).score_batch(tasks, responses, dense=False) for flag in (True, False)
    ]
    _assert_same_results(*sparse, atol_p=1e-5)
