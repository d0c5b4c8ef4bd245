"""Customer notices, keyed by order: the ledger and the ETAs fold into one order's notice state
(``streams.domain.orders.notify``), and every notice goes out as a ``CustomerNotified`` on ``notifications``.

One agent reads both ``orders`` and ``etas`` (both keyed by order id, so one writer owns each
order's state). A timer tells "arriving soon" when time passing, not a new estimate, brings the p50
within the horizon: an on-time rider's estimate does not move, so no ETA event would. Time there is
the events' time running on (``notify.EventClock``), not the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import Streams
from streams.domain.orders import notify as nt

PARAMS = nt.NoticeParams()
TICK_S = 5.0


def _at(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def customer_notified(notice: nt.Notice) -> ev.CustomerNotified:
    """The wire event; its id is the notice id (already a uuid5 of order, attempt and kind), so a
    replay re-sends the same id and the sender deduplicates."""
    return ev.CustomerNotified(
        event_id=notice.notice_id, occurred_at=_at(notice.at_s), order_id=notice.order_id,
        tracking_id=notice.tracking_id, kind=notice.kind, attempt=notice.attempt,
        window_start=_at(notice.window_start_s), window_end=_at(notice.window_end_s),
        promised_end=_at(notice.promised_end_s), reason=notice.reason, rider_id=notice.rider_id)


class CustomerNotices:
    """The notice states (a table) and the lock that keeps the agent and the timer from writing
    back a state the other has moved on while it waited for the broker's acks."""

    def __init__(self, streams: Streams, notice_states: MutableMapping[bytes, Any]) -> None:
        self.streams = streams
        self.notice_states = notice_states
        self.folding = asyncio.Lock()
        self.clock = nt.EventClock()

    async def _commit(self, key: bytes, state: nt.NoticeState | None, new: nt.NoticeState,
                      notices: tuple[nt.Notice, ...]) -> None:
        """Outputs acked first, then the state: a crash in between replays the input and re-derives
        the same notices (same ids) rather than losing them."""
        if notices:
            await self.streams.publish(tp.NOTIFICATIONS, [customer_notified(n) for n in notices])
        if new is not state:
            self.notice_states[key] = new

    async def handle_order_input(self, message: Any) -> None:
        item = await self.streams.accept(message)
        if item is None:
            return
        key = item.key.encode()  # table keys are the raw message keys
        self.clock.saw(item.occurred_at.timestamp(), self.streams.clock())
        async with self.folding:
            state = self.notice_states.get(key)
            if isinstance(item, ev.EtaUpdated):
                new, notices = nt.on_eta(state, item, PARAMS)
            else:
                new, notices = nt.on_order(state, item, PARAMS)
            await self._commit(key, state, new, notices)

    async def tell_arriving_soon(self) -> None:
        """Ticks the orders whose p50 has come within the horizon by the event clock. Skips every
        other order unfolded, and every order before the first event since the worker started."""
        now = self.clock.now(self.streams.clock())
        if now is None:
            return
        due = [key for key, state in self.notice_states.items()
               if state is not None and (at := nt.tick_due_at(state, PARAMS)) is not None and at <= now]
        for key in due:
            async with self.folding:
                state = self.notice_states.get(key)  # the agent may have moved it on meanwhile
                if state is None:
                    continue
                new, notices = nt.on_tick(state, now, PARAMS)
                await self._commit(key, state, new, notices)


def install(streams: Streams) -> CustomerNotices:
    # Written from the timer as well as the agent, so its changelog partition comes from the key.
    notices = CustomerNotices(streams, streams.table("notice-state", use_partitioner=True))
    # One agent reads both the ledger and the ETAs (both keyed by order id: one writer per order's state).
    streams.agent([tp.ORDERS, tp.ETAS], "customer_notices", notices.handle_order_input)
    if streams.app is not None:
        streams.app.timer(interval=TICK_S)(notices.tell_arriving_soon)
    return notices
