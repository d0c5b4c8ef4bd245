"""Order inbox -> order ledger: the only writer of order state and of the ``orders`` topic."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import Streams
from streams.domain.orders import lifecycle


async def handle_submission(streams: Streams, order_states: MutableMapping[bytes, Any], message: Any) -> None:
    submission = await streams.accept(message)
    if submission is None:
        return
    key = submission.key.encode()  # table keys are the raw message keys
    state = order_states.get(key)
    assert streams.policy is not None, "the orders role needs the OTP key"
    decision = lifecycle.decide(state, submission, submission.occurred_at, streams.policy)
    if decision.duplicate:
        return
    if decision.rejection is not None:
        await streams.dead_letter(message, decision.rejection)
        return
    new_state = lifecycle.apply(state, decision)
    assert new_state is not None
    await streams.publish(tp.ORDERS, decision.ledger)
    await streams.publish(tp.NOTIFICATIONS, decision.notifications)
    await streams.publish(tp.DISPATCH_QUEUE, [e for e in decision.ledger if for_dispatch(e)], key=new_state.hub_id)
    order_states[key] = new_state


def for_dispatch(event: ev.Event) -> bool:
    """What dispatch hears of the ledger, re-keyed by hub: new, changed and withdrawn orders, status
    changes and re-attempt decisions (re-plan triggers), and a dispatcher's manual assignments (its
    own plans it knows already)."""
    if isinstance(event, ev.OrderAssigned):
        return event.manual
    return isinstance(event, ev.OrderCreated | ev.OrderUpdated | ev.OrderCancelled | ev.StatusChanged
                      | ev.AttemptDecided)


def install(streams: Streams) -> None:
    order_states = streams.table("order-state")

    async def order_lifecycle(message: Any) -> None:
        await handle_submission(streams, order_states, message)

    streams.agent([tp.INBOX], "order_lifecycle", order_lifecycle)
