"""``python -m streams ROLE [options]``: one stream worker, settings from ``MILESTREAM_*`` variables.

Roles: ``orders``, ``dispatch``, ``notifications`` (Faust workers; the options after the role go to
Faust's ``worker`` command, e.g. ``-l info``) and ``tracking`` (the batched tracking worker). Run
any number of each: processes of one role share its partitions. ``milestream up`` starts one of each.

Faust's own web server is off unless ``--with-web`` is given: it binds 0.0.0.0:6066 otherwise,
so two workers on one machine would collide. An entry point: the one place besides ``infra`` that
reads the settings.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

USAGE = ("usage: python -m streams {orders,dispatch,notifications,tracking} [faust worker options]\n"
         "  orders         order lifecycle (inbox -> ledger) and rider shifts\n"
         "  dispatch       plans and re-plans per hub\n"
         "  notifications  customer notices\n"
         "  tracking       GPS pings, plans and shifts -> arrivals, ETAs, alerts (batched, not Faust)")
EXIT_KAFKA = 70  # Kafka failed under the worker; restart it and it resumes from its checkpoint


def _run_tracking() -> int:
    from infra.kafka import tracking_config
    from infra.settings import Settings
    from streams.errors import StreamError
    from streams.workers.tracking import TrackerWorker

    settings = Settings.from_env()
    _logging(settings.log_level)
    from schemas import Codec

    worker = TrackerWorker(tracking_config(settings), codec=Codec(registry=settings.registry_client()))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("streams.tracking").info("tracking worker started (group %s-tracking)", settings.app_id)
    try:
        worker.run(stop)
    except StreamError:
        logging.getLogger("streams.tracking").exception("tracking worker stopped; restart it to resume from its "
                                                        "checkpoint")
        return EXIT_KAFKA
    return 0


def _run_faust(role: str, options: list[str]) -> int:
    from infra.kafka import faust_credentials, limits
    from infra.settings import Settings
    from schemas import Codec
    from streams.app import create_app

    settings = Settings.from_env().require_otp_key() if role == "orders" else Settings.from_env()
    # Registry look-ups run in an executor before decoding (Streams.accept), never on the event loop.
    streams = create_app(settings, role, codec=Codec(registry=settings.registry_client(), fetch_on_decode=False),
                         credentials=faust_credentials(settings), limits=limits(settings))
    if not any(a.startswith(("--with-web", "--without-web")) for a in options):
        options.append("--without-web")
    sys.argv = [f"{sys.argv[0]} {role}", "worker", *options]
    streams.app.main()
    return 0


def _logging(level: str) -> None:
    from infra.logs import install

    install(level)


def main(argv: list[str]) -> int:
    from infra.logs import install

    install()  # private files (umask 077), log records masked and escaped
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    role, options = argv[0], argv[1:]
    if role == "worker":  # the old single-process form
        print("python -m streams worker: the worker is split by role now\n" + USAGE, file=sys.stderr)
        return 2
    if role == "tracking":
        return _run_tracking()
    from streams.app import ROLES

    if role not in ROLES:
        print(f"unknown role {role!r}\n{USAGE}", file=sys.stderr)
        return 2
    return _run_faust(role, options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
