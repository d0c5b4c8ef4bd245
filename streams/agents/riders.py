"""Rider shifts: checked, remembered (rider -> hub), and passed to dispatch keyed by hub."""

from __future__ import annotations

from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import app, dead_letter, decode, dispatch_topic, handles_each, publish, rider_hubs, riders_topic


async def handle_shift(message: Any) -> None:
    shift = await decode(message, tp.RIDERS.events)
    if shift is None:
        return
    if isinstance(shift, ev.RiderShiftStarted):
        await publish(dispatch_topic, [shift], key=shift.hub_id)
        rider_hubs[shift.key.encode()] = shift.hub_id
    elif isinstance(shift, ev.RiderShiftEnded):
        hub = rider_hubs.get(shift.key.encode())
        if hub is None:
            await dead_letter(message, ev.DeadLetterKind.ILLEGAL_TRANSITION,
                              f"rider {shift.rider_id} ended a shift that never started")
            return
        await publish(dispatch_topic, [shift], key=hub)
        rider_hubs[shift.key.encode()] = None


rider_shifts = app.agent(riders_topic, name="rider_shifts")(handles_each(handle_shift))
