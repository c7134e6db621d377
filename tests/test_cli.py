import json
import re

import pytest

from g2r_cli import main


def test_score_writes_heatmap_and_prints_verdicts(tmp_path, tiny_model, capsys):
    html_path = tmp_path / "out.html"
    task = {
        "id": "mine",
        "prompt": "Name a colour.",
        "criteria": [{"criterion": "Names a colour", "weight": 2}, {"criterion": "Is rude", "weight": -1}],
    }
    assert (
        main(
            [
                "score",
                "--task-json",
                json.dumps(task),
                "--response",
                "Blue, like the sky.",
                "--model",
                tiny_model,
                "--soft",
                "--device",
                "cpu",
                "--html",
                str(html_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[mine] Name a colour." in out and "Names a colour" in out and "p_true=" in out
    page = html_path.read_text()
    spans = re.findall(r'<span style="background:rgb\(\d+,\d+,\d+\)" title="token (\d+): ([-+0-9.e]+)">', page)
    assert [int(n) for n, _ in spans] == list(range(len(spans)))  # every token, in order
    total = float(re.search(r"sequence reward <b>([-+0-9.]+)</b>", page).group(1))
    assert sum(float(v) for _, v in spans) == pytest.approx(total, abs=1e-3)
    assert "Blue" in page and "Is rude" in page


def test_score_errors_are_clear(tiny_model, tmp_path, capsys):
    cases = [
        (["--task", "nope", "--response", "x"], "no task 'nope'"),
        (["--task-json", "{", "--response", "x"], "--task-json: bad JSON"),
        (["--task", "expl-001", "--response", "  "], "the response is empty"),
        (
            ["--task", "expl-001", "--response", "x", "--html", str(tmp_path / "missing" / "out.html")],
            "folder of --html does not exist",
        ),
    ]
    for args, message in cases:
        assert main(["score", *args, "--model", tiny_model]) == 2
        err = capsys.readouterr().err
        assert err.startswith("g2r score: error: ") and message in err and "Traceback" not in err
    with pytest.raises(KeyError, match="no task 'nope'"):  # --debug: the exception itself
        main(["score", "--task", "nope", "--response", "x", "--model", tiny_model, "--debug"])


def test_unknown_command_prints_usage(capsys):
    assert main(["frobnicate"]) == 2
    assert "g2r {score,train,eval,judge,export,tasks}" in capsys.readouterr().out


def test_train_preset_errors_name_the_choices(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text('{"preset": "cpu_demo"}')
    cases = [
        (["--preset", "cpu"], "unknown preset 'cpu'; known: ['cpu_demo', 'gpu_paper']"),
        (["--preset", "cpu_demo", "--config", str(config)], "--preset and --config are exclusive"),
        (["--preset", "cpu_demo", "--resume", str(tmp_path)], "--resume uses the run's saved config"),
    ]
    for args, message in cases:
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("g2r train: error: ") and message in err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--preset NAME      a preset shipped with the package: cpu_demo, gpu_paper" in capsys.readouterr().out
