"""Progress bars: who decides whether one is drawn (the call, the global switch, the environment, the place)."""

from __future__ import annotations

import sys
import types

import pytest

from tokentree.infra import progress
from tokentree.infra.errors import InputError


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv(progress.ENV_VARIABLE, raising=False)
    progress.set_progress(None)
    yield
    progress.set_progress(None)


def test_the_call_then_the_switch_then_the_environment_decide(monkeypatch):
    assert progress.progress_enabled() is False  # tests run off a terminal, outside Jupyter
    monkeypatch.setenv(progress.ENV_VARIABLE, "1")
    assert progress.progress_enabled() is True
    progress.set_progress(False)
    assert progress.progress_enabled() is False
    assert progress.progress_enabled(True) is True
    progress.set_progress(None)
    monkeypatch.setenv(progress.ENV_VARIABLE, "off")
    assert progress.progress_enabled() is False
    monkeypatch.setenv(progress.ENV_VARIABLE, "sometimes")
    with pytest.raises(InputError, match="TOKENTREE_PROGRESS='sometimes' is not understood"):
        progress.progress_enabled()
    with pytest.raises(InputError, match="True, False or None"):
        progress.set_progress("yes")  # type: ignore[arg-type]


def test_a_jupyter_kernel_gets_bars(monkeypatch):
    shell = types.SimpleNamespace(config={"IPKernelApp": {"connection_file": "k.json"}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert progress.progress_enabled() is True
    terminal_ipython = types.SimpleNamespace(config={"TerminalIPythonApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert progress.progress_enabled() is False


def test_bars_draw_when_switched_on_and_the_command_line_switch_is_scoped(capsys):
    from tokentree.cli import main

    progress.set_progress(True)
    assert list(progress.progress(range(3), desc="counting")) == [0, 1, 2]
    assert "counting" in capsys.readouterr().err
    progress.set_progress(None)
    assert main(["--quiet", "info", "missing.npz"]) == 2
    assert progress.progress_switch() is None  # main() leaves the caller's switch as it was
