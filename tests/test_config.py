"""TrainConfig: files, presets, overrides, types and ranges."""

import pytest

from agents import TrainConfig
from agents.config import PRESETS_DIR, preset_names


def test_config_file_types_presets_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("preset: cpu_demo\nlearning_rate: 3e-5\ntotal_steps: 7\ntau: 0.5\njudge: null\n")
    config = TrainConfig.from_file(
        path, ["group_size=3", "task_ids=creative-001,creative-002", "tau=auto", "bf16=false"]
    )
    assert config.learning_rate == 3e-5 and isinstance(config.learning_rate, float)
    assert (config.total_steps, config.group_size, config.tau, config.bf16) == (7, 3, "auto", False)
    assert config.task_ids == ["creative-001", "creative-002"]
    assert config.max_new_tokens == TrainConfig.preset("cpu_demo").max_new_tokens  # from the preset
    assert TrainConfig().group_size == 8 and TrainConfig().learning_rate == 1e-6  # the paper's defaults
    with pytest.raises(ValueError, match="unknown config field"):
        TrainConfig.from_dict({"learning_rat": 1e-5})
    with pytest.raises(ValueError, match="group_size"):
        TrainConfig(group_size=0)
    with pytest.raises(ValueError, match="not a valid int"):
        TrainConfig().with_overrides(["total_steps=1.5"])


def test_shipped_presets_load_by_name_and_as_files():
    assert preset_names() == ["cpu_demo", "gpu_paper"]
    assert TrainConfig.from_file(PRESETS_DIR / "cpu_demo.json") == TrainConfig.preset("cpu_demo")
    assert TrainConfig.preset("cpu_demo").total_steps == 6
    with pytest.raises(ValueError, match="unknown preset 'cpu'; known: \\['cpu_demo', 'gpu_paper'\\]"):
        TrainConfig.preset("cpu")
    paper = TrainConfig.from_file(PRESETS_DIR / "gpu_paper.json")
    assert (paper.group_size, paper.learning_rate, paper.temperature, paper.top_p, paper.top_k, paper.clip_eps) == (
        8,
        1e-6,
        0.7,
        0.8,
        20,
        0.2,
    )
