"""Rider shifts: checked, remembered (rider -> hub), and passed to dispatch keyed by hub."""

from __future__ import annotations

from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import app, dead_letter, decode, dispatch_topic, publish, rider_hubs, riders_topic


@app.agent(riders_topic)
async def rider_shifts(stream: Any) -> None:
    async for event in stream.events():
        shift = await decode(event.message, tp.RIDERS.events)
        if shift is None:
            continue
        if isinstance(shift, ev.RiderShiftStarted):
            await publish(dispatch_topic, [shift], key=shift.hub_id)
            rider_hubs[shift.key] = shift.hub_id
        elif isinstance(shift, ev.RiderShiftEnded):
            hub = rider_hubs.get(shift.key)
            if hub is None:
                await dead_letter(event.message, ev.DeadLetterKind.ILLEGAL_TRANSITION,
                                  f"rider {shift.rider_id} ended a shift that never started")
                continue
            await publish(dispatch_topic, [shift], key=hub)
            rider_hubs[shift.key] = None
