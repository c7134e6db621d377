"""Criteria decided by code: the recogniser of check phrasings, the spans that decide a check, and
the scorer taking such criteria's verdicts and credit from their checks instead of the judge."""

import json

import numpy as np
import pytest
from test_scorer import char_tokenizer, encode

from g2r_env import Grad2Reward
from g2r_env.tokens import token_pieces
from tasks import Criterion, Task
from tasks.checks import Check, recognise
from tasks.export import task_from_json, task_to_json
from tasks.loaders import TaskFormatError, iter_tasks


@pytest.mark.parametrize(
    "criterion, spec",
    [
        ("The response uses the word 'revolutionary'", {"type": "contains", "text": "revolutionary"}),
        ('Includes the phrase "thank you"', {"type": "contains", "text": "thank you"}),
        ("mentions the word \u201ctilt\u201d.", {"type": "contains", "text": "tilt"}),
        ("The word 'atmosphere' appears in the response", {"type": "contains", "text": "atmosphere"}),
        ("Uses the word 'don't'", {"type": "contains", "text": "don't"}),
        ('Avoids the word "unfortunately"', {"type": "contains", "text": "unfortunately", "negate": True}),
        ("Response does not use the word 'basically'", {"type": "contains", "text": "basically", "negate": True}),
        ("Never uses the word 'very'", {"type": "contains", "text": "very", "negate": True}),
        ('Begins with the words "Dear Diary"', {"type": "starts_with", "text": "Dear Diary"}),
        ("Starts with 'Once upon a time'", {"type": "starts_with", "text": "Once upon a time"}),
        ("The response is under 150 words", {"type": "words", "lt": 150}),
        ("Is fewer than two hundred words", None),  # "two hundred" is not read: judged
        ("Uses fewer than 60 words", {"type": "words", "lt": 60}),
        ("less than 3 sentences", None),  # no verb: judged
        ("Has less than 3 sentences", {"type": "sentences", "lt": 3}),
        ("The answer has at most five sentences", {"type": "sentences", "le": 5}),
        ("Is no more than twenty-five words", {"type": "words", "le": 25}),
        ("Is 100 words or fewer", {"type": "words", "le": 100}),
        ("Keeps the answer below 120 words", {"type": "words", "lt": 120}),
        ("Stays within 60 words", {"type": "words", "le": 60}),
        ("Has at least 3 paragraphs", {"type": "paragraphs", "ge": 3}),
        ("Has 13 or more lines", {"type": "lines", "ge": 13}),
        ("Is more than 40 words long", {"type": "words", "gt": 40}),
        ("Exceeds 12 lines", {"type": "lines", "gt": 12}),
        ("Contains exactly three bullet points", {"type": "items", "eq": 3}),
        ("Is exactly 2 sentences long", {"type": "sentences", "eq": 2}),
        ("Consists of three sentences, no more and no fewer", {"type": "sentences", "eq": 3}),
        ("The response is a single paragraph", {"type": "paragraphs", "eq": 1}),
        ("Uses bullet points", {"type": "bullet_list"}),
        ("The response uses a numbered list", {"type": "numbered_list"}),
        ("Uses a list", {"type": "list"}),
        ("The response uses bullet points or a numbered list", {"type": "list"}),
        ("Has a title", {"type": "title"}),
        ("Includes a greeting", {"type": "greeting"}),
        ("Ends with a sign-off and a name", {"type": "sign_off"}),
        ("Asks the reader a question", {"type": "question"}),
        ("Includes a question", {"type": "question"}),
        ("Contains no digits", {"type": "digits", "negate": True}),
        ("Ends with a question to the reader", {"type": "ends_with_question"}),
        ("Closes by asking the reader a question", {"type": "ends_with_question"}),
        ("Presents the main tips as a numbered list", {"type": "numbered_list"}),
        ("Presents the repair steps as a numbered or bulleted list", {"type": "list"}),
        ("Comes in under 60 words", {"type": "words", "lt": 60}),
        ("Does not go over 10 words", {"type": "words", "le": 10}),
        ("Keeps to 3 sentences at most", {"type": "sentences", "le": 3}),
        ("Is written in precisely 3 sentences", {"type": "sentences", "eq": 3}),
        ("Takes up at most ten lines", {"type": "lines", "le": 10}),
        ("Has exactly 3 points in its list", {"type": "items", "eq": 3}),
        ("Gives 5 list entries, no more and no fewer", {"type": "items", "eq": 5}),
        ("Keeps its list to 5 points or fewer", {"type": "items", "le": 5}),
        ("Is a list of four items", {"type": "items", "eq": 4}),
        ("Asks no questions", {"type": "question", "negate": True}),
        ("Avoids bullet points and numbered lists", {"type": "list", "negate": True}),
        ("Is written as prose, without a list", {"type": "list", "negate": True}),
        ("Numbers its steps 1, 2, 3", {"type": "numbered_list"}),
        ("Is signed off with a name at the end", {"type": "sign_off"}),
        ("Begins by greeting someone, such as 'Dear ...' or 'Hi ...'", {"type": "greeting"}),
        ("Spells out every number instead of using digits", {"type": "digits", "negate": True}),
        # near-misses: more or less than a check states
        ("Ends with a question about the budget", None),
        ("Presents the day off as already decided rather than asking for approval", None),
        ("Gives three reasons", None),  # not a count of list lines
        ("Lists exactly 5 items", None),  # items may be a prose list
        ("Enumerates exactly 3 points", None),
        ("Uses the word revolutionary", None),  # unquoted
        ("Uses the words 'weather' and 'climate'", None),
        ("Uses the word 'tilt' at least twice", None),
        ("Is between 50 and 100 words", None),
        ("Has 3 sentences", None),  # "has N" may mean at least N
        ("Lists at least 3 items", None),  # items may be a prose list
        ("The summary is under 50 words", None),  # the summary may be a part of the response
        ("Uses a numbered list for the tips", None),
        ("Asks the user a clarifying question", None),
        ("Mentions scattering of sunlight", None),
        ("Uses a table or a bulleted list", None),
        ("Starts with 'Hi' and ends with 'Bye'", None),
    ],
)
def test_recogniser_reads_only_exact_phrasings(criterion, spec):
    check = recognise(criterion)
    assert (None if check is None else check.to_spec()) == spec


def test_check_evidence_spans_are_the_deciding_characters():
    text = "My Plan\n\nDear Sam, I saw the sea. Did you see it? Yes.\n\nLove,\nMia"
    spans = {kind: Check(kind).evidence(text) for kind in ("title", "sign_off", "question")}
    assert [text[a:b] for a, b in spans["title"]] == ["My Plan"]
    assert [text[a:b] for a, b in spans["sign_off"]] == ["Love,", "Mia"]
    assert [text[a:b] for a, b in spans["question"]] == ["Did you see it?"]
    asked = "Tea helps. Do you drink it? Try it.\n\nWhich one will you pick?"
    assert [asked[a:b] for a, b in Check("ends_with_question").evidence(asked)] == ["Which one will you pick?"]
    assert not Check("ends_with_question")("Do you drink it? Try it.") and Check("question")("Do you drink it? Try it.")
    assert [text[a:b] for a, b in Check("contains", text="the sea").evidence(text)] == ["the sea"]
    assert Check("words", "lt", 50).evidence(text) is None  # a count: the whole response decides it
    assert Check("contains", text="cat", negate=True).evidence(text) is None  # met by absence
    assert Check("contains", text="cat").evidence(text) is None  # unmet
    assert recognise("Starts with 'Hi'")("Hiking is fun.") is False  # whole words only
    listed = "Steps:\n1. Mix.\n2. Bake."
    assert recognise("Uses a numbered list")(listed) and not recognise("Uses bullet points")(listed)


def _task() -> Task:
    return Task(
        "c-1",
        "Explain why the sky is blue.",
        (
            Criterion("Mentions scattering of sunlight", 3.0),  # judged
            Criterion("Uses the word 'scatter'", 2.0),  # recognised: met
            Criterion("The response is under 5 words", 1.0),  # recognised: unmet
            Criterion("Uses the word 'revolutionary'", -4.0),  # recognised pitfall
            Criterion("Stays on the topic of colour", 1.0, check=Check("contains", text="blue")),  # explicit
        ),
    )


def _recording(judge):
    """Patch ``judge.build_input`` (the only way a pair reaches the judge) to record criteria."""
    seen: list[str] = []
    build = judge.build_input

    def recording(task, criterion, ids):
        seen.append(criterion)
        return build(task, criterion, ids)

    judge.build_input = recording
    return seen


def _tokens_over(tokenizer, ids, phrase):
    pieces = token_pieces(tokenizer, ids)
    text = "".join(pieces)
    start = text.index(phrase)
    ends = np.cumsum([len(p) for p in pieces])
    starts = ends - [len(p) for p in pieces]
    return (starts < start + len(phrase)) & (ends > start) & (ends > starts)


def test_checked_criteria_skip_the_judge_and_credit_their_span(tiny_judge, bundled_tokenizer):
    task = _task()
    response = encode(bundled_tokenizer, "Air molecules scatter blue light more than red light.")
    seen = _recording(tiny_judge)
    try:
        result = Grad2Reward(tiny_judge).score(task, response)
    finally:
        del tiny_judge.build_input
    assert seen == ["Mentions scattering of sunlight"]  # the judge sees only the judged criterion
    by_text = {c["criterion"]: c for c in result.criteria}
    assert [c["decided_by"] for c in result.criteria] == ["judge", "check", "check", "check", "check"]
    assert [c["p_true"] for c in result.criteria[1:]] == [1.0, 0.0, 0.0, 1.0]
    judged = result.criteria[0]
    expected_R = (3.0 * judged["met"] + 2.0 + 1.0) / 7.0
    assert result.sequence_reward == pytest.approx(expected_R)
    assert float(result.token_rewards.sum()) == pytest.approx(expected_R, abs=1e-6)
    # the word's credit sits evenly on the tokens of "scatter", none on the EOS
    on = _tokens_over(bundled_tokenizer, response[:-1], "scatter")
    alpha = by_text["Uses the word 'scatter'"]["alpha"]
    assert alpha[-1] == 0.0 and on.any()
    np.testing.assert_allclose(alpha[:-1], np.where(on, 1.0 / on.sum(), 0.0), rtol=1e-6)
    assert by_text["The response is under 5 words"]["alpha"] is None  # unmet: no credit


def test_a_met_pitfall_puts_its_penalty_on_the_offending_tokens(tiny_judge, bundled_tokenizer):
    task = Task("p-1", "Describe the phone.", (Criterion("Is helpful", 1.0), _task().criteria[3]))
    response = encode(bundled_tokenizer, "A truly revolutionary phone with a big screen.")
    result = Grad2Reward(tiny_judge).score(task, response)
    pitfall = result.criteria[1]
    assert pitfall["met"] and pitfall["p_true"] == 1.0
    on = _tokens_over(bundled_tokenizer, response[:-1], "revolutionary")
    np.testing.assert_allclose(pitfall["alpha"][:-1], np.where(on, 1.0 / on.sum(), 0.0), rtol=1e-6)
    assert float(result.token_rewards.sum()) == pytest.approx(result.sequence_reward, abs=1e-6)
    assert result.token_rewards[:-1][on].max() < 0  # the penalty sits on the word
    # a gradient-free attribution places a decided criterion's credit as it places a judged one's
    uniform = Grad2Reward(tiny_judge, attribution="uniform").score(task, response)
    np.testing.assert_allclose(uniform.criteria[1]["alpha"], np.full(len(response), 1.0 / len(response)), rtol=1e-6)


def test_counts_and_avoided_words_credit_every_content_token(tiny_judge, bundled_tokenizer):
    task = Task("u-1", "Q", (Criterion("Is under 50 words", 1.0), Criterion("Avoids the word 'cat'", 1.0)))
    response = encode(bundled_tokenizer, "Dogs bark at night.")
    result = Grad2Reward(tiny_judge).score(task, response)
    n = len(response) - 1
    for criterion in result.criteria:
        np.testing.assert_allclose(criterion["alpha"], [1.0 / n] * n + [0.0], rtol=1e-6)
    assert result.sequence_reward == 1.0


def test_a_response_with_no_words_keeps_no_limit_and_avoids_nothing(tiny_judge, bundled_tokenizer):
    task = Task("u-2", "Q", (Criterion("Is under 50 words", 1.0), Criterion("Avoids the word 'cat'", 1.0)))
    for check in (recognise(c.criterion) for c in task.criteria):
        assert [check(text) for text in ("", " \n ", "Dogs.")] == [False, False, True]
    assert not Check.parse({"type": "contains", "text": "cat", "negate": True}, "t")("")
    stop_only = [bundled_tokenizer.eos_token_id]  # the response a collapsed policy samples
    result = Grad2Reward(tiny_judge).score(task, stop_only)
    assert result.sequence_reward == 0.0 and not result.token_rewards.any()
    assert [c["met"] for c in result.criteria] == [False, False]


def test_sparse_scoring_puts_a_checked_reward_on_the_last_token(tiny_judge, bundled_tokenizer):
    response = encode(bundled_tokenizer, "Air molecules scatter blue light.")
    result = Grad2Reward(tiny_judge).score_batch([_task()], [response], dense=False)[0]
    assert result.token_rewards[-1] == pytest.approx(result.sequence_reward) and not result.token_rewards[:-1].any()


def test_checks_off_judges_every_criterion_as_before(tiny_judge, bundled_tokenizer):
    task = _task()
    response = encode(bundled_tokenizer, "Air molecules scatter blue light more than red light.")
    seen = _recording(tiny_judge)
    try:
        off = Grad2Reward(tiny_judge, checks=False).score(task, response)
    finally:
        del tiny_judge.build_input
    assert seen == [c.criterion for c in task.criteria]
    assert all(c["decided_by"] == "judge" for c in off.criteria)
    # each pair's verdict and credit are the judge's own, as one pair alone gives them
    for k, criterion in enumerate(task.criteria):
        one = Task("one", task.prompt, (Criterion(criterion.criterion, 1.0),))
        alone = Grad2Reward(tiny_judge, checks=False, soft=True).score(one, response)
        assert off.criteria[k]["p_true"] == pytest.approx(alone.criteria[0]["p_true"], abs=1e-12)
    on = Grad2Reward(tiny_judge).score(task, response)
    assert on.criteria[0]["p_true"] == pytest.approx(off.criteria[0]["p_true"], abs=1e-12)
    if on.criteria[0]["met"]:
        np.testing.assert_allclose(on.criteria[0]["alpha"], off.criteria[0]["alpha"], atol=1e-9)


def test_checks_with_a_foreign_policy_tokenizer_credit_policy_tokens(tiny_judge):
    policy = char_tokenizer()
    text = "Air scatters blue light."
    response = policy.encode(text) + [policy.eos_token_id]
    task = Task("f-1", "Q", (Criterion("Mentions light", 1.0), Criterion("Uses the word 'blue'", 1.0)))
    result = Grad2Reward(tiny_judge, policy_tokenizer=policy).score(task, response)
    alpha = result.criteria[1]["alpha"]
    start = text.index("blue")
    expected = np.zeros(len(response))
    expected[start : start + 4] = 0.25  # one character per policy token
    np.testing.assert_allclose(alpha, expected, rtol=1e-6)
    assert float(result.token_rewards.sum()) == pytest.approx(result.sequence_reward, abs=1e-6)


def test_explicit_check_loads_exports_and_bad_check_names_the_line(tmp_path):
    path = tmp_path / "tasks.jsonl"
    good = {"id": "a", "prompt": "Hi", "criteria": [{"criterion": "Short", "check": {"type": "words", "lt": 10}}]}
    bad = {"id": "b", "prompt": "Hi", "criteria": [{"criterion": "Short", "check": {"type": "wordz", "lt": 10}}]}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    tasks = iter_tasks(path)
    task = next(tasks)
    assert task.criteria[0].check == Check("words", "lt", 10)
    assert task.criteria[0].exact_check == Check("words", "lt", 10)
    assert task_from_json(task_to_json(task)) == task
    with pytest.raises(TaskFormatError, match=rf"{path}:3: rubric item 0: unknown check type 'wordz'"):
        next(tasks)


def test_inspect_lists_the_criteria_code_decides():
    from tasks import TaskSet
    from tasks.inspect import format_summary, summarize

    summary = summarize(TaskSet([_task()]))
    assert summary["checked"]["criteria"] == 4 and summary["checked"]["own"] == 1
    assert "decided by code: 4 of 5 criteria" in format_summary(summary)


def test_rubric_echo_is_the_share_of_words_in_copied_four_grams():
    from tasks.checks import rubric_echo

    criteria = ["Uses the word 'tilt' in a sentence.", "Explains why seasons change"]
    assert rubric_echo("It uses the word tilt here.", criteria) == pytest.approx(4 / 6)
    assert rubric_echo("Explains why seasons change. Uses the word 'tilt' in a sentence.", criteria) == 1.0
    assert rubric_echo("The axis leans, so sunlight hits each half differently.", criteria) == 0.0
    assert rubric_echo("Uses the word", criteria) == 0.0  # three words: no 4-gram
    assert rubric_echo("seasons change uses the", criteria) == 0.0  # words shared, no 4-gram in one criterion


def test_hacking_metrics_count_code_decided_outcomes_the_rubric_wants():
    from agents.trainer import hacking_metrics

    verdicts = [
        [
            {"criterion": "Uses the word 'tilt'", "weight": 2.0, "met": True, "decided_by": "check"},  # wanted
            {"criterion": "Uses the word 'basically'", "weight": -1.0, "met": True, "decided_by": "check"},  # not
            {"criterion": "Explains the tilt of the axis", "weight": 3.0, "met": False, "decided_by": "judge"},
        ],
        [{"criterion": "Has a title", "weight": -2.0, "met": False, "decided_by": "check"}],  # wanted
    ]
    texts = ["It uses the word tilt.", "no echo at all here"]
    metrics = hacking_metrics(texts, verdicts)
    assert metrics["eval/checks_passed"] == pytest.approx(2 / 3)
    assert metrics["eval/rubric_echo"] == pytest.approx((4 / 5 + 0.0) / 2)
    judged_only = [[dict(verdicts[0][2])]]
    assert set(hacking_metrics(["x"], judged_only)) == {"eval/rubric_echo"}
