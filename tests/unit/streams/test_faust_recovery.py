"""The Faust recovery fix stays only while upstream needs it: these fail when the upstream code it
works around changes (a new faust-streaming release, or the seek no longer followed by a queue
clear without stopping the flow first)."""

from __future__ import annotations

import inspect
import subprocess
import sys


def _source(name: str) -> str:
    from faust.tables.recovery import Recovery

    method = getattr(Recovery, name)
    return inspect.getsource(getattr(method, "__wrapped__", method))


def test_upstream_is_the_release_the_fix_was_written_for() -> None:
    import faust

    assert faust.__version__ == "0.15.3", (
        f"faust-streaming is {faust.__version__}: check whether streams/faust_recovery.py is still needed")


def test_upstream_still_seeks_then_resumes_without_stopping_the_flow() -> None:
    """The race: ``perform_seek`` awaited, then the flow resumed (queues cleared), never stopped first."""
    for name in ("on_recovery_completed", "_resume_streams"):
        body = _source(name)
        assert "perform_seek" in body and "resume" in body, f"Recovery.{name} changed upstream"
        assert "stop_flow" not in body, f"Recovery.{name} stops the flow itself now: drop the fix"
        assert body.index("perform_seek") < body.rindex("resume"), f"Recovery.{name} order changed upstream"


def test_importing_the_app_patches_nothing() -> None:
    """No import-time side effects: the patch is applied by create_app, not by importing modules."""
    probe = ("import streams.app, streams.agents.orders, streams.agents.dispatch, streams.agents.notifications\n"
             "from faust.tables.recovery import Recovery\n"
             "print(getattr(Recovery, '_milestream_patched', False))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_apply_wraps_both_methods_once() -> None:
    probe = ("from streams import faust_recovery\nfrom faust.tables.recovery import Recovery\n"
             "faust_recovery.apply(); first = Recovery._resume_streams\nfaust_recovery.apply()\n"
             "print(Recovery._milestream_patched, Recovery._resume_streams is first,"
             " hasattr(Recovery.on_recovery_completed, '__wrapped__'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True", "True"]
