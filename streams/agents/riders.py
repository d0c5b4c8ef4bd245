"""Rider shifts and breaks: checked, the shift remembered (rider -> hub), and passed to dispatch keyed
by hub. This agent owns the dead letters of ``riders`` (the tracking worker reads shifts too, and
skips bad ones)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import Streams
from streams.edge import Rejection


async def handle_shift(streams: Streams, rider_hubs: MutableMapping[bytes, Any], message: Any) -> None:
    shift = await streams.accept(message)
    if shift is None:
        return
    if isinstance(shift, ev.RiderShiftStarted):
        await streams.publish(tp.DISPATCH_QUEUE, [shift], key=shift.hub_id)
        rider_hubs[shift.key.encode()] = shift.hub_id
    elif isinstance(shift, ev.RiderShiftEnded):
        hub = rider_hubs.get(shift.key.encode())
        if hub is None:
            await streams.dead_letter(message, Rejection(ev.DeadLetterKind.ILLEGAL_TRANSITION,
                                                         f"rider {shift.rider_id} ended a shift that never started"))
            return
        await streams.publish(tp.DISPATCH_QUEUE, [shift], key=hub)
        rider_hubs[shift.key.encode()] = None
    elif isinstance(shift, ev.BreakStarted | ev.BreakEnded):
        hub = rider_hubs.get(shift.key.encode())
        if hub is None:
            await streams.dead_letter(message, Rejection(
                ev.DeadLetterKind.ILLEGAL_TRANSITION,
                f"rider {shift.rider_id} reported {type(shift).__name__} without a shift"))
            return
        await streams.publish(tp.DISPATCH_QUEUE, [shift], key=hub)


def install(streams: Streams) -> None:
    rider_hubs = streams.table("rider-hub")

    async def rider_shifts(message: Any) -> None:
        await handle_shift(streams, rider_hubs, message)

    streams.agent([tp.RIDERS], "rider_shifts", rider_shifts)
