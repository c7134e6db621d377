"""vLLM's output goes to a log file, not the terminal; its harmless weight-sync warning is dropped.

No engine starts here: the records and prints are made the way vLLM makes them.
"""

import importlib.util
import logging
import os
from pathlib import Path

import pytest

from agents.sampling import RotaryReloadFilter, engine_start_output, vllm_output_to


def test_vllm_records_and_engine_start_prints_go_to_the_file(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)  # importing trl sets it to ERROR
    vllm_logger = logging.getLogger("vllm")
    before = (vllm_logger.handlers[:], vllm_logger.propagate, os.environ.get("VLLM_CONFIGURE_LOGGING"))
    log = tmp_path / "run" / "vllm.log"
    with vllm_output_to(log):
        assert os.environ["VLLM_CONFIGURE_LOGGING"] == "0"  # vLLM must not put its terminal handler back
        logging.getLogger("vllm.v1.engine.core").info("init engine took %.2f s", 2.95)
        logging.getLogger("vllm.v1.engine.core").debug("not at INFO")
        with engine_start_output():
            os.write(2, b"[W utils.cpp:68] Warning: NUMA binding\n")  # as C++ code prints
            os.write(1, b"Loading safetensors checkpoint shards: 100%\n")
        os.write(1, b"[g2r] our line\n")
    out, err = capfd.readouterr()
    assert out == "[g2r] our line\n" and err == ""
    lines = log.read_text().splitlines()
    assert lines[0].startswith("INFO ") and "[vllm.v1.engine.core:" in lines[0]
    assert lines[0].endswith("] init engine took 2.95 s")
    assert lines[1:] == ["[W utils.cpp:68] Warning: NUMA binding", "Loading safetensors checkpoint shards: 100%"]
    assert (vllm_logger.handlers, vllm_logger.propagate, os.environ.get("VLLM_CONFIGURE_LOGGING")) == before


def test_engine_start_output_changes_nothing_outside_vllm_output_to(capfd):
    with engine_start_output():
        os.write(2, b"to the terminal\n")
    assert capfd.readouterr().err == "to the terminal\n"


def test_the_rotary_reload_warning_is_dropped_and_other_warnings_kept():
    RotaryReloadFilter.install()
    RotaryReloadFilter.install()  # once per process
    logger = logging.getLogger(RotaryReloadFilter.LOGGER)
    assert sum(isinstance(f, RotaryReloadFilter) for f in logger.filters) == 1

    def record(layer: str) -> logging.LogRecord:
        return logger.makeRecord(
            logger.name, logging.WARNING, "layerwise.py", 266, "%s: Failed to load weights", (layer,), None
        )

    assert not logger.filter(record("RotaryEmbedding"))
    assert logger.filter(record("LlamaAttention"))  # a layer whose weights matter is still reported


def test_the_filter_matches_the_warning_in_the_installed_vllm():
    spec = importlib.util.find_spec("vllm")
    if spec is None:
        pytest.skip("vllm is not installed")
    source = Path(spec.submodule_search_locations[0], "model_executor/model_loader/reload/layerwise.py")
    assert 'logger.warning("%s: Failed to load weights", layer.__class__.__name__)' in source.read_text()
