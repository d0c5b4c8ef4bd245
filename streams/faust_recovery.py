"""A fix for faust-streaming 0.15.3's table recovery, kept here alone until upstream has it.

``Recovery.on_recovery_completed`` (and ``_resume_streams``) resume the stream partitions, await
``perform_seek`` and then ``flow_control.resume()``, which clears every agent queue. The fetcher
keeps running meanwhile: a batch drained during the seek is still being fed to the agents' queues
when the seek resets ``_read_offset`` to the committed offsets; its records that reached a queue
are dropped by the clear, and the rest of the batch, delivered after it, moves ``_read_offset``
past them again, so those records are never processed. Stopping the flow first ends that batch
(``getmany`` checks ``flow_active`` per record and seeks back when it is off), so the seek, the
clear and ``resume_flow`` happen with nothing in flight.

``tests/unit/streams/test_faust_recovery.py`` fails when the upstream code this works around
changes, so the fix is dropped (or re-checked) then, not carried blindly.
"""

from __future__ import annotations

from typing import Any

PATCHED_METHODS = ("on_recovery_completed", "_resume_streams")


def apply() -> None:
    """Idempotent; called by :func:`streams.app.create_app`, never at import."""
    from faust.tables import recovery

    if getattr(recovery.Recovery, "_milestream_patched", False):
        return

    def stopping_flow_first(method: Any) -> Any:
        async def wrapper(self: Any, generation_id: int = 0) -> None:
            self.app.consumer.stop_flow()  # resumed by `method` (or by the next rebalance if it returns early)
            await method(self, generation_id)

        wrapper.__wrapped__ = method  # type: ignore[attr-defined]
        return wrapper

    for name in PATCHED_METHODS:
        setattr(recovery.Recovery, name, stopping_flow_first(getattr(recovery.Recovery, name)))
    recovery.Recovery._milestream_patched = True
