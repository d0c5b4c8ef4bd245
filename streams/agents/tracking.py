"""Rider tracking in the worker: GPS pings, route plans and shifts, keyed by rider, through
:class:`streams.domain.tracking.tracker.Tracker` (hygiene, geofences, ETAs, alerts).

It is not a per-event Faust agent: Faust's per-event path ran 4-5k events/s here and the tracker
must take 20k pings/s, so the worker hosts the batched :class:`streams.workers.tracking.TrackerWorker`
on a thread of its own, started with the worker and stopped (with a last checkpoint) before it
shuts down. Its consumer group is ``<app_id>-tracking``; its state lives in the compacted
``<prefix><app_id>-tracking-state`` topic.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from streams.app import app, codec, settings
from streams.workers.tracking import TrackerWorker

log = logging.getLogger(__name__)
_running: dict[str, Any] = {}


def _run(worker: TrackerWorker, stop: threading.Event) -> None:
    try:
        worker.run(stop)
    except Exception:  # Kafka gone or a checkpoint not acknowledged: the worker must not carry on half-blind
        log.exception("tracking worker stopped; the process exits so that it restarts from its checkpoint")
        import os

        os._exit(70)


@app.task
async def start_tracking() -> None:
    worker = TrackerWorker(settings, codec=codec, checkpoint_s=settings.tracker_checkpoint_s)
    stop = threading.Event()
    thread = threading.Thread(target=_run, args=(worker, stop), name="tracking", daemon=True)
    _running.update(worker=worker, stop=stop, thread=thread)
    thread.start()
    log.info("tracking worker started (group %s-tracking)", settings.app_id)


@app.on_before_shutdown.connect
async def stop_tracking(app: Any, **kwargs: Any) -> None:
    stop, thread = _running.get("stop"), _running.get("thread")
    if stop is None or thread is None:
        return
    stop.set()
    thread.join(30)
