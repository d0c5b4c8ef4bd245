"""Order inbox -> order ledger: the only writer of order state and of the ``orders`` topic."""

from __future__ import annotations

from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams.app import (
    app,
    dead_letter,
    decode,
    dispatch_topic,
    handles_each,
    inbox_topic,
    notifications_topic,
    order_states,
    orders_topic,
    policy,
    publish,
)
from streams.domain.orders import lifecycle


async def handle_submission(message: Any) -> None:
    submission = await decode(message, tp.INBOX.events)
    if submission is None:
        return
    key = submission.key.encode()  # table keys are the raw message keys
    state = order_states.get(key)
    decision = lifecycle.decide(state, submission, submission.occurred_at, policy)
    if decision.duplicate:
        return
    if decision.rejection is not None:
        await dead_letter(message, decision.rejection.kind, decision.rejection.reason)
        return
    new_state = lifecycle.apply(state, decision)
    assert new_state is not None
    await publish(orders_topic, decision.ledger)
    await publish(notifications_topic, decision.notifications)
    # Dispatch sees new and withdrawn orders and status changes (re-plan triggers), re-keyed by hub.
    await publish(dispatch_topic, [e for e in decision.ledger
                                   if isinstance(e, ev.OrderCreated | ev.OrderCancelled | ev.StatusChanged)],
                  key=new_state.hub_id)
    order_states[key] = new_state


order_lifecycle = app.agent(inbox_topic, name="order_lifecycle")(handles_each(handle_submission))
