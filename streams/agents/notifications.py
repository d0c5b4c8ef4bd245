"""Customer notices, keyed by order: the ledger and the ETAs fold into one order's notice state
(``streams.domain.orders.notify``), and every notice goes out as a ``CustomerNotified`` on ``notifications``.

One agent reads both ``orders`` and ``etas`` (both keyed by order id, so one writer owns each
order's state). A timer tells "arriving soon" when the clock, not a new estimate, brings the p50
within the horizon: an on-time rider's estimate does not move, so no ETA event would.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import _table, app, decode, handles_each, notifications_topic, orders_topic, publish, settings
from streams.domain.orders import notify as nt

PARAMS = nt.NoticeParams()
TICK_S = 5.0
etas_name = settings.topic(tp.ETAS.name)
# Written from the timer as well as the agent, so its changelog partition comes from the key.
notice_states = _table("notice-state", use_partitioner=True)
# The agent and the timer both read, publish, then write an order's state; one at a time, so
# neither writes back a state the other has moved on while it waited for the broker's acks.
_folding = asyncio.Lock()


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


async def _commit(key: bytes, state: nt.NoticeState | None, new: nt.NoticeState,
                  notices: tuple[nt.Notice, ...]) -> None:
    """Outputs acked first, then the state: a crash in between replays the input and re-derives
    the same notices (same ids) rather than losing them."""
    if notices:
        await publish(notifications_topic, [customer_notified(n) for n in notices])
    if new is not state:
        notice_states[key] = new


async def handle_order_input(message: Any) -> None:
    allowed = tp.ETAS.events if message.topic == etas_name else tp.ORDERS.events
    item = await decode(message, allowed)
    if item is None:
        return
    key = item.key.encode()  # table keys are the raw message keys
    async with _folding:
        state = notice_states.get(key)
        if isinstance(item, ev.EtaUpdated):
            new, notices = nt.on_eta(state, item, PARAMS)
        else:
            new, notices = nt.on_order(state, item, PARAMS)
        await _commit(key, state, new, notices)


customer_notices = app.agent(
    app.topic(orders_topic.get_topic_name(), etas_name, key_type=bytes, value_type=bytes, key_serializer="raw",
              value_serializer="raw"),
    name="customer_notices",
)(handles_each(handle_order_input))


@app.timer(interval=TICK_S)
async def tell_arriving_soon() -> None:
    """Ticks the orders whose p50 has come within the horizon by the worker's wall clock (ETAs
    carry event time; only the clock says time has passed). Skips every other order unfolded."""
    now = time.time()
    due = [key for key, state in notice_states.items()
           if state is not None and (at := nt.tick_due_at(state, PARAMS)) is not None and at <= now]
    for key in due:
        async with _folding:
            state = notice_states.get(key)  # the agent may have moved it on meanwhile
            if state is None:
                continue
            new, notices = nt.on_tick(state, now, PARAMS)
            await _commit(key, state, new, notices)
