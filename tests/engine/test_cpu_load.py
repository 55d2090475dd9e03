"""llama.cpp's thread count follows the other processes' load (cpu_load.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pilotfish.lsp_server.engine.cpu_load import OtherLoad, read_proc_stat, threads_for
from pilotfish.lsp_server.engine.generate import GenerationRequest
from pilotfish.lsp_server.engine.llamacpp_backend import LlamaCppGenerator, cpu_count
from test_llamacpp_backend import write_tiny_gguf


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.mark.parametrize(
    ("cpus", "others", "threads"),
    [
        (2, None, 1),  # nothing known yet: leave a core
        (2, 0.1, 2),  # idle: both cores
        (2, 0.8, 1),  # a build beside it: one
        (4, 0.0, 4),
        (4, 2.5, 3),
        (1, 0.0, 1),
        (16, 0.0, 8),  # big machines: about the physical cores, whatever the load
    ],
)
def test_threads_for(cpus: int, others: float | None, threads: int) -> None:
    assert threads_for(cpus, others) == threads


class Clock:
    def __init__(self) -> None:
        self.t = self.busy = self.own = 0.0

    def advance(self, seconds: float, busy_cores: float, own_cores: float) -> None:
        self.t += seconds
        self.busy += seconds * busy_cores
        self.own += seconds * own_cores


def test_other_load_subtracts_this_process() -> None:
    c = Clock()
    meter = OtherLoad(read_stat=lambda: (c.busy, 2 * c.t), own_cpu=lambda: c.own,
                      clock=lambda: c.t)
    assert meter.sample() is None  # one sample is not a rate
    c.advance(1.0, busy_cores=1.8, own_cores=1.8)  # only llama.cpp ran
    assert meter.sample() == pytest.approx(0.0)
    c.advance(1.0, busy_cores=1.5, own_cores=0.5)  # something else took a core
    assert meter.sample() == pytest.approx(1.0)
    c.advance(0.05, busy_cores=0.0, own_cores=0.0)  # too short to measure: the last stands
    assert meter.sample() == pytest.approx(1.0)
    assert OtherLoad(read_stat=lambda: None).sample() is None  # not Linux


def test_proc_stat_is_read_here() -> None:
    busy, total = read_proc_stat() or (0.0, 0.0)
    assert 0 < busy < total


@pytest.mark.skipif(cpu_count() > 4, reason="the automatic count adapts on small machines")
def test_automatic_threads_follow_the_load(tiny_gguf: Path) -> None:
    gen = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=0, n_ctx=512)
    assert gen.threads == max(1, cpu_count() - 1)
    c = Clock()
    gen._load_meter = OtherLoad(read_stat=lambda: (c.busy, 2 * c.t), own_cpu=lambda: c.own,
                                clock=lambda: c.t)
    request = GenerationRequest(prompt="<|fim_prefix|>x = <|fim_suffix|><|fim_middle|>",
                                max_tokens=2, stop=())
    gen.generate(request, threading.Event())
    c.advance(1.0, busy_cores=0.0, own_cores=0.0)  # idle between requests
    gen.generate(request, threading.Event())
    assert gen.threads == cpu_count()
    c.advance(1.0, busy_cores=1.0, own_cores=0.0)  # another process took a core
    result = gen.generate(request, threading.Event())
    assert gen.threads == max(1, cpu_count() - 1) and result.new_tokens > 0
    fixed = LlamaCppGenerator(tiny_gguf, model_id="tiny", threads=1, n_ctx=512)
    assert fixed._load_meter is None  # an explicit count is kept
