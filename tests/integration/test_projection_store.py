"""What every projection store must do, run against chdb (or a ClickHouse server when
``MILESTREAM_TEST_CLICKHOUSE_DSN`` is set): idempotent tables, replays that collapse, order state
that keeps the highest ledger offset, columns that round-trip, KPI figures on a known day, and
free text escaped while ids keep their bytes.

Rows are built and inserted by the projection writer itself (its batch path, with real
confluent-kafka messages built in memory), so the suite checks what production writes; the
writer's consumer has no bootstrap servers and is never polled.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Message

from infra.clickhouse import connect
from infra.settings import Settings
from projections import kpi, rows
from projections.ddl import TABLES
from projections.writer import ProjectionWriter
from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from solver.geo import haversine_m

CODEC = Codec()
PREFIX = "store."
S = ev.OrderStatus
T0 = datetime(2026, 11, 24, 9, 0, 0, 123789, tzinfo=UTC)  # sub-millisecond on purpose
HOME_TOPIC = {cls: PREFIX + spec.name for spec in reversed(tp.PROJECTED) for cls in spec.events}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def to_ms(dt: datetime) -> datetime:
    """What a DateTime64(3) column keeps of an instant."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def as_utc(value: Any) -> Any:
    """An instant read back (clickhouse-connect returns UTC columns as naive datetimes)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@pytest.fixture(scope="session")
def store_client(request: pytest.FixtureRequest) -> Any:
    """A ClickHouse server's client when MILESTREAM_TEST_CLICKHOUSE_DSN names one, else the
    session's chdb engine (one per process)."""
    dsn = os.environ.get("MILESTREAM_TEST_CLICKHOUSE_DSN")
    if dsn:
        return connect(Settings.from_env({}, clickhouse_dsn=dsn))
    return request.getfixturevalue("chdb_client")


@pytest.fixture
def db(store_client: Any) -> Iterator[str]:
    """A database of this test's own, dropped afterwards."""
    name = f"store_{uuid.uuid4().hex[:10]}"
    yield name
    store_client.command(f"DROP DATABASE IF EXISTS {name}")


def writer(client: Any, db: str) -> ProjectionWriter:
    """A projection writer on the store whose consumer never connects (no bootstrap servers)."""
    w = ProjectionWriter(client=client, database=db, consumer_config={"group.id": f"{db}-projections"},
                         topics=sorted(set(HOME_TOPIC.values())))
    w._consumer.close()
    w.create_tables()
    return w


def message(event: ev.Event, offset: int, *, topic: str | None = None, partition: int = 0) -> Any:
    name = topic or HOME_TOPIC[type(event)]
    return Message(topic=name, partition=partition, offset=offset, key=event.key.encode(),
                   value=CODEC.encode(event, name))


def messages(events: list[ev.Event], first_offset: int = 0) -> list[Any]:
    """Events as a topic holds them: consecutive offsets per topic from ``first_offset``."""
    next_offset: dict[str, int] = {}
    out = []
    for e in events:
        name = HOME_TOPIC[type(e)]
        offset = next_offset.get(name, first_offset)
        next_offset[name] = offset + 1
        out.append(message(e, offset))
    return out


def project(w: ProjectionWriter, batch: list[Any]) -> None:
    """One batch down the writer's own path: its rows, inserted as ``ProjectionWriter.step`` does."""
    for table, (columns, data) in w._rows(batch).items():
        if data:
            w.client.insert(f"{w.db}.{table}", data, column_names=list(columns))


def query(client: Any, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    return client.query(sql, parameters=parameters or None).result_rows


def scalar(client: Any, sql: str) -> Any:
    return query(client, sql)[0][0]


# -- events ----------------------------------------------------------------------------------

def order_created(order_id: str, minute: float = 0, **kw: Any) -> ev.OrderCreated:
    fields: dict[str, Any] = dict(
        event_id=f"{order_id}-created", occurred_at=at(minute), order_id=order_id, tracking_id=f"TRK-{order_id}",
        hub_id="hub-1", mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.9712345678901, lon=77.5912345678901,
                                                                         address="1 Main St"),
        window_start=at(30), window_end=at(210), service_time_s=120, weight_kg=2.5, volume_l=3.0, units=1,
        cod_amount=249.75, currency="INR")
    fields.update(kw)
    return ev.OrderCreated(**fields)


def assigned(order_id: str, minute: float, rider_id: str = "r1") -> ev.OrderAssigned:
    return ev.OrderAssigned(event_id=f"{order_id}-assigned", occurred_at=at(minute), order_id=order_id,
                            rider_id=rider_id, route_id="route-1", sequence=1, planned_arrival=at(minute + 30))


def status(order_id: str, minute: float, frm: S | None, to: S, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"{order_id}-{to.value}", occurred_at=at(minute), order_id=order_id,
                            from_status=frm, to_status=to, reason=reason, rider_id="r1")


def delivered_ledger(order_id: str, rider_id: str = "r1") -> list[ev.Event]:
    return [order_created(order_id), assigned(order_id, 1, rider_id), status(order_id, 5, S.ASSIGNED, S.OUT_FOR_DELIVERY),
            status(order_id, 38, S.OUT_FOR_DELIVERY, S.ARRIVED), status(order_id, 40, S.ARRIVED, S.DELIVERED)]


def failed_ledger(order_id: str, reason: str = "customer_unavailable") -> list[ev.Event]:
    return [order_created(order_id), assigned(order_id, 1), status(order_id, 5, S.ASSIGNED, S.OUT_FOR_DELIVERY),
            status(order_id, 50, S.OUT_FOR_DELIVERY, S.FAILED, reason)]


def cancelled_ledger(order_id: str) -> list[ev.Event]:
    return [order_created(order_id),
            ev.OrderCancelled(event_id=f"{order_id}-cancelled", occurred_at=at(3), order_id=order_id,
                              reason="shipper asked", cancelled_by="shipper")]


def ping(event_id: str, rider_id: str, seconds: float, lat: float, lon: float = 77.59, **kw: Any) -> ev.GpsPing:
    return ev.GpsPing(event_id=event_id, occurred_at=T0 + timedelta(seconds=seconds + 0.5), rider_id=rider_id,
                      device_id=f"dev-{rider_id}", device_time=T0 + timedelta(seconds=seconds), lat=lat, lon=lon, **kw)


def dead_letter(event_id: str, offset: int, kind: ev.DeadLetterKind = ev.DeadLetterKind.MALFORMED,
                reason: str = "message of 3 bytes is too short to be an event", key: str = "ord-x") -> ev.DeadLetter:
    return ev.DeadLetter(event_id=event_id, occurred_at=at(1), source_key=key, source_topic=PREFIX + "inbox",
                         source_partition=2, source_offset=offset, original=b"\x00\xffbad" + offset.to_bytes(8, "big"),
                         error_kind=kind, reason=reason)


def one_of_each() -> list[ev.Event]:
    """One event of every type the projection reads, with optional fields set and unset."""
    g = ev.GeoPoint(lat=12.97, lon=77.59)
    return [
        order_created("o1", pickup=ev.Location(lat=12.96, lon=77.58), required_skills=("fragile", "cold")),
        ev.OrderUpdated(event_id="e-upd", occurred_at=at(1), order_id="o1", drop=ev.Location(lat=12.98, lon=77.6),
                        window_end=at(240), instructions="ring twice"),
        ev.OrderCancelled(event_id="e-can", occurred_at=at(2), order_id="o2", reason="duplicate"),
        ev.RiderShiftStarted(event_id="e-shs", occurred_at=at(0), rider_id="r1", hub_id="hub-1",
                             vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=30.5, capacity_volume_l=90,
                             capacity_units=25, skills=("cold",), shift_start=at(0), shift_end=at(480), start=g),
        ev.RiderShiftEnded(event_id="e-she", occurred_at=at(480), rider_id="r1", position=g),
        ping("e-gps", "r1", 1, 12.9701234567, speed_mps=None, accuracy_m=4.25),
        ev.OrderAssigned(event_id="e-asg", occurred_at=at(3), order_id="o1", rider_id="r1", route_id="route-1",
                         sequence=1, planned_arrival=at(40)),
        ev.RoutePlanned(event_id="e-rte", occurred_at=at(3), rider_id="r1", route_id="route-1", hub_id="hub-1",
                        stops=(ev.PlannedStop(order_id="o1", kind=ev.StopKind.DROP, lat=12.98, lon=77.6,
                                              planned_arrival=at(40), service_time_s=120, window_start=at(30),
                                              window_end=at(240)),),
                        start=g, planned_start=at(5), planned_end=at(60), distance_m=5321.5),
        status("o1", 5, S.ASSIGNED, S.OUT_FOR_DELIVERY),
        ev.PodSubmitted(event_id="e-pods", occurred_at=at(40), order_id="o1", rider_id="r1", otp_hash=b"\x01\xab" * 16),
        ev.PodAccepted(event_id="e-poda", occurred_at=at(40), order_id="o1", rider_id="r1", pod_event_id="e-pods"),
        ev.PodRejected(event_id="e-podr", occurred_at=at(39), order_id="o1", rider_id="r1", pod_event_id="e-pods0",
                       reason="otp_mismatch", attempts_left=2),
        ev.OtpIssued(event_id="e-otp", occurred_at=at(5), order_id="o1", tracking_id="TRK-o1", otp_salt=b"\x00" * 16,
                     otp_sealed=b"\x10\x20" * 24, expires_at=at(300), max_attempts=3),
        ev.EtaUpdated(event_id="e-eta", occurred_at=at(10), order_id="o1", rider_id="r1", route_id="route-1",
                      eta_p50=at(38), eta_p90=at(45)),
        ev.ArrivedAtStop(event_id="e-arr", occurred_at=at(38), rider_id="r1", route_id="route-1", fence_id="o1",
                         kind=ev.FenceKind.STOP, order_id="o1", arrived_at=at(37.5), location=g, confidence=0.875,
                         source_ping_id="e-gps"),
        ev.DepartedStop(event_id="e-dep", occurred_at=at(42), rider_id="r1", route_id="route-1", fence_id="hub-1",
                        kind=ev.FenceKind.HUB, departed_at=at(41.5), confidence=0.5, source_ping_id="e-gps"),
        ev.ZoneEvent(event_id="e-zone", occurred_at=at(20), rider_id="r1", zone_id="zone-9",
                     kind=ev.ZoneEventKind.ENTERED, at=at(19.9), source_ping_id="e-gps"),
        ev.CustomerNotified(event_id="e-ntf", occurred_at=at(5), order_id="o1", tracking_id="TRK-o1",
                            kind=ev.NoticeKind.OUT_FOR_DELIVERY, attempt=1, window_start=at(35), window_end=at(50)),
        ev.AlertRaised(event_id="e-alr", occurred_at=at(60), subject_id="r1", kind="rider_offline",
                       severity=ev.Severity.WARNING, rider_id="r1", message="no fix for 5 min"),
        status("o1", 40, S.ARRIVED, S.DELIVERED),
        dead_letter("e-dl", 7),
        ev.AttemptDecided(event_id="e-dec", occurred_at=at(50), order_id="o3", attempt=1,
                          failure_reason=ev.FailureReason.OTHER, decision=ev.AttemptDecision.REATTEMPT, rider_id="r1",
                          window_start=at(110), window_end=at(290), reason="gate locked; same day"),
        ev.BreakStarted(event_id="e-brs", occurred_at=at(100), rider_id="r1", break_id="lunch", expected_end=at(130),
                        position=g),
        ev.BreakEnded(event_id="e-bre", occurred_at=at(130), rider_id="r1"),
        ev.TravelTimesLearned(event_id="e-ttl", occurred_at=at(140), vehicle_type=ev.VehicleType.SCOOTER,
                              leg_speed_mps=tuple(5.0 + h / 8 for h in range(24)), service_factor=1.2, legs=31),
    ]


# -- the contract ----------------------------------------------------------------------------

def test_creating_the_tables_twice_keeps_them_and_their_rows(store_client: Any, db: str) -> None:
    w = writer(store_client, db)
    project(w, messages([order_created("o1")]))
    w.create_tables()
    writer(store_client, db)  # a second writer starting on the same store
    tables = {r[0] for r in query(store_client, f"SELECT name FROM system.tables WHERE database = '{db}'")}
    assert tables == set(TABLES)
    assert scalar(store_client, f"SELECT count() FROM {db}.events") == 1
    assert scalar(store_client, f"SELECT count() FROM {db}.order_state") == 1


def test_a_store_made_before_returned_at_gets_the_column_and_keeps_its_rows(store_client: Any, db: str) -> None:
    old = TABLES["order_state"].format(db=db).replace(
        "    returned_at Nullable(DateTime64(3, 'UTC')) COMMENT 'back at the hub after the last attempt',\n", "")
    assert "returned_at" not in old
    store_client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    store_client.command(old)
    store_client.insert(f"{db}.order_state", [("o-old", "T", "hub-1", "last_mile", "failed", "r1", "route-1", 1, at(0),
                                               at(30), at(240), None, None, None, None, at(50), "no one home", None,
                                               12.9, 77.5, 1.0, 0.0, at(50), 7)],
                        column_names=[c for c in rows.ORDER_COLUMNS if c != "returned_at"])
    w = writer(store_client, db)  # creates what is missing
    project(w, [message(status("o-old", 90, S.FAILED, S.RETURNED_TO_HUB), 8, topic=PREFIX + "orders")])
    got = query(store_client, f"SELECT status, failure_reason, returned_at FROM {db}.order_state FINAL")
    assert [(s, r, as_utc(t)) for s, r, t in got] == [("returned_to_hub", "no one home", to_ms(at(90)))]


@pytest.mark.parametrize("table", ["events", "gps_pings", "dead_letters"])
def test_a_replayed_event_is_one_row_with_final(store_client: Any, db: str, table: str) -> None:
    w = writer(store_client, db)
    store_client.command(f"SYSTEM STOP MERGES {db}.{table}")  # the duplicates stay until FINAL reads them
    batch = messages([ping(f"p{i}", "r1", i, 12.97 + i * 1e-4) for i in range(5)]
                     + [dead_letter(f"dl{i}", i) for i in range(3)])
    project(w, batch)
    project(w, batch)  # a crash between insert and commit: the batch again, same offsets
    project(w, [message(ping("p0", "r1", 0, 12.97), 99), message(dead_letter("dl0", 0), 99)])  # a re-send
    pings, letters = ["p0", "p1", "p2", "p3", "p4"], ["dl0", "dl1", "dl2"]
    distinct, resent = {"events": (pings + letters, 2), "gps_pings": (pings, 1), "dead_letters": (letters, 1)}[table]
    assert scalar(store_client, f"SELECT count() FROM {db}.{table}") == 2 * len(distinct) + resent  # all inserted
    assert scalar(store_client, f"SELECT count() FROM {db}.{table} FINAL") == len(distinct)
    ids = [r[0] for r in query(store_client, f"SELECT event_id FROM {db}.{table} FINAL ORDER BY event_id")]
    assert ids == sorted(distinct)


def test_order_state_keeps_the_highest_ledger_offset_whatever_the_insert_order(store_client: Any, db: str) -> None:
    writer(store_client, db)
    store_client.command(f"SYSTEM STOP MERGES {db}.order_state")
    folded: dict[str, list[rows.OrderRow]] = {}
    for order_id, ledger in (("newest-first", failed_ledger("newest-first")), ("oldest-first", delivered_ledger("oldest-first"))):
        row = None
        for offset, event in enumerate(ledger, start=100):
            row = rows.fold_order(row, event, offset)
            assert row is not None
            folded.setdefault(order_id, []).append(row)
    newest_first = list(reversed(folded["newest-first"]))  # a stale writer's rows landing after the fresh ones
    for r in newest_first + folded["oldest-first"]:
        store_client.insert(f"{db}.order_state", [rows.order_row_values(r)], column_names=list(rows.ORDER_COLUMNS))
    sql = f"SELECT order_id, status, version, attempts FROM {db}.order_state FINAL ORDER BY order_id"
    expected = [("newest-first", "failed", 103, 1), ("oldest-first", "delivered", 104, 1)]
    assert query(store_client, sql) == expected
    store_client.command(f"SYSTEM START MERGES {db}.order_state")
    store_client.command(f"OPTIMIZE TABLE {db}.order_state FINAL")
    assert query(store_client, sql.replace(" FINAL", "")) == expected  # a merge keeps the same rows


def test_every_projected_event_type_round_trips_in_events(store_client: Any, db: str) -> None:
    sample = one_of_each()
    projected = {cls for spec in tp.PROJECTED for cls in spec.events}
    assert {type(e) for e in sample} == projected  # a new event type needs a sample here
    w = writer(store_client, db)
    batch = messages(sample, first_offset=40)
    project(w, batch)
    stored = {r[0]: r for r in query(store_client, f"SELECT {', '.join(rows.EVENT_COLUMNS)} FROM {db}.events FINAL")}
    assert len(stored) == len(sample)
    for event, m in zip(sample, batch, strict=True):
        got = stored[event.event_id]
        assert got[1:3] == (type(event).__name__, event.key)
        assert as_utc(got[3]) == to_ms(event.occurred_at)
        assert got[4:8] == (m.topic(), 0, m.offset(), event.schema_version)
        wire = CODEC.decode(m.value())  # the ledger keeps milliseconds; the payload is what was read
        assert got[8] == rows.event_row(wire, m.topic(), 0, m.offset())[8]  # byte for byte
        assert json.loads(got[8])["event_id"] == event.event_id


def test_gps_ping_columns_round_trip(store_client: Any, db: str) -> None:
    full = ping("g-full", "r7", 1.2345, -33.868820123456789, 151.209295987654321, speed_mps=13.4375,
                heading_deg=359.99, accuracy_m=0.0, battery_pct=100.0)
    bare = ping("g-bare", "r7", 2.5, 89.9999999, -179.9999999)  # every optional field unset
    w = writer(store_client, db)
    project(w, messages([full, bare]))
    got = query(store_client, f"SELECT {', '.join(rows.GPS_COLUMNS)} FROM {db}.gps_pings FINAL ORDER BY device_time")
    assert [tuple(as_utc(v) for v in r) for r in got] == [
        ("g-full", "r7", "dev-r7", to_ms(full.device_time), to_ms(full.occurred_at), -33.868820123456789,
         151.209295987654321, 13.4375, 359.99, 0.0, 100.0),
        ("g-bare", "r7", "dev-r7", to_ms(bare.device_time), to_ms(bare.occurred_at), 89.9999999, -179.9999999,
         None, None, None, None)]


def test_dead_letter_columns_round_trip(store_client: Any, db: str) -> None:
    letter = dead_letter("dl-1", 12345678901, ev.DeadLetterKind.INVALID, reason="lat 91.5 out of range",
                         key="ord-\u00e9-7")
    w = writer(store_client, db)
    project(w, [message(letter, 3)])
    [got] = query(store_client, f"SELECT {', '.join(rows.DEAD_LETTER_COLUMNS)} FROM {db}.dead_letters FINAL")
    assert tuple(as_utc(v) for v in got) == (
        "dl-1", to_ms(letter.occurred_at), PREFIX + "inbox", 2, 12345678901, "ord-\u00e9-7", "invalid",
        "lat 91.5 out of range", letter.original.hex())
    assert bytes.fromhex(got[8]) == letter.original


def test_order_state_row_round_trips(store_client: Any, db: str) -> None:
    ledger = failed_ledger("o-rt", reason="no one home")
    w = writer(store_client, db)
    project(w, messages(ledger, first_offset=500))
    expected = None
    for offset, event in enumerate(ledger, start=500):
        expected = rows.fold_order(expected, event, offset)
    assert expected is not None
    [got] = query(store_client, f"SELECT {', '.join(rows.ORDER_COLUMNS)} FROM {db}.order_state FINAL")
    stored = dict(zip(rows.ORDER_COLUMNS, (as_utc(v) for v in got), strict=True))
    want = {c: to_ms(v) if isinstance(v, datetime) else v for c, v in zip(rows.ORDER_COLUMNS, rows.order_row_values(expected),
                                                                          strict=True)}
    assert stored == want
    assert (stored["status"], stored["attempts"], stored["version"], stored["arrived_at"]) == ("failed", 1, 503, None)
    assert stored["drop_lat"] == 12.9712345678901 and stored["cod_amount"] == 249.75


def test_a_fresh_writer_continues_an_order_from_the_stored_row(store_client: Any, db: str) -> None:
    """After a restart (or a cache eviction) the writer reads the order's row back and folds on."""
    ledger = delivered_ledger("o-cont")
    project(writer(store_client, db), messages(ledger[:2]))
    restarted = writer(store_client, db)
    project(restarted, [message(e, 2 + i) for i, e in enumerate(ledger[2:])])
    [got] = query(store_client, f"SELECT status, rider_id, attempts, assigned_at, version FROM {db}.order_state FINAL")
    assert (got[0], got[1], got[2], as_utc(got[3]), got[4]) == ("delivered", "r1", 1, to_ms(at(1)), 4)


def test_kpi_queries_give_the_known_figures(store_client: Any, db: str) -> None:
    w = writer(store_client, db)
    day: list[ev.Event] = delivered_ledger("o-delivered") + failed_ledger("o-failed") + cancelled_ledger("o-cancelled")
    step = 2.7e-3  # ~300 m of latitude in 10 s: a real move
    lat = [12.97, 12.97 + step, 12.97 + step + 1e-5, 12.97 + step + 0.05, 12.97 + 2 * step + 0.05]
    # moves, jitter (1 m), an impossible jump (5.5 km in 10 s), moves
    day += [ping(f"k{i}", "r1", 10 * i, la) for i, la in enumerate(lat)]
    day += [dead_letter("kd1", 1), dead_letter("kd2", 2),
            dead_letter("kd3", 3, ev.DeadLetterKind.INVALID, reason="weight_kg must be within 0..100000")]
    batch = messages(day)
    project(w, batch)
    project(w, batch)  # replayed: no figure may move
    orders = kpi.query_dicts(store_client, kpi.order_kpis_sql(db))
    assert orders == [{"orders_created": 3, "delivered": 1, "failed": 1, "cancelled": 1, "in_progress": 0,
                       "on_time_pct": 100.0, "first_attempt_success_pct": 50.0}]
    [rider] = kpi.query_dicts(store_client, kpi.distance_per_rider_sql(db))
    moved_km = 2 * haversine_m((12.97, 77.59), (12.97 + step, 77.59)) / 1000
    assert rider["rider_id"] == "r1" and rider["km"] == pytest.approx(moved_km, abs=0.01)
    assert scalar(store_client, kpi.events_in_clickhouse_sql(db)) == len(day)
    assert [tuple(r.values()) for r in kpi.query_dicts(store_client, kpi.dead_letters_by_kind_sql(db))] == [
        ("invalid", 1), ("malformed", 2)]


def test_free_text_is_escaped_and_ids_keep_their_bytes(store_client: Any, db: str) -> None:
    order_id = "ord-\x1b[31m-\u00fc-'\"\\-\u65e5"
    rider_id = "rider\t7\x07"
    reason = "said: \x1b[2J\nRIDER OK see http://ops:hunter2@example.com/x"
    ledger = [order_created(order_id), assigned(order_id, 1, rider_id),
              status(order_id, 5, S.ASSIGNED, S.OUT_FOR_DELIVERY),
              status(order_id, 50, S.OUT_FOR_DELIVERY, S.FAILED, reason)]
    letter = dead_letter("dl-esc", 1, ev.DeadLetterKind.INVALID, reason=reason, key=order_id)
    w = writer(store_client, db)
    project(w, messages([*ledger, ping("p-esc", rider_id, 1, 12.97), letter]))

    [(stored_order, stored_rider, failure)] = query(
        store_client, f"SELECT order_id, rider_id, failure_reason FROM {db}.order_state FINAL")
    assert (stored_order, stored_rider) == (order_id, rider_id)
    assert failure == "said: \\x1b[2J\\nRIDER OK see http://ops:****@example.com/x"
    [(dl_key, dl_reason)] = query(store_client, f"SELECT source_key, reason FROM {db}.dead_letters FINAL")
    assert (dl_key, dl_reason) == (order_id, failure)
    payloads = [r[0] for r in query(store_client, f"SELECT payload FROM {db}.events FINAL")]
    assert all(0x20 <= ord(c) <= 0x7E for p in payloads for c in p)  # JSON escapes control characters
    records = {json.loads(p)["event_id"]: json.loads(p) for p in payloads}
    assert records[f"{order_id}-failed"]["reason"] == reason  # and the escape loses nothing

    # Ids join across tables: the ledger to the order row, the rider's pings to the order row.
    joined = query(store_client, f"""
        SELECT e.event_type FROM {db}.events AS e FINAL
        INNER JOIN (SELECT order_id FROM {db}.order_state FINAL) AS o ON e.stream_key = o.order_id
        ORDER BY e.event_type""")
    assert [r[0] for r in joined] == ["DeadLetter", "OrderAssigned", "OrderCreated", "StatusChanged", "StatusChanged"]
    by_rider = query(store_client, f"""
        SELECT o.order_id, g.event_id FROM {db}.gps_pings AS g FINAL
        INNER JOIN (SELECT order_id, rider_id FROM {db}.order_state FINAL) AS o ON g.rider_id = o.rider_id""")
    assert by_rider == [(order_id, "p-esc")]
    assert query(store_client, f"SELECT count() FROM {db}.order_state FINAL WHERE order_id = %(id)s",
                 id=order_id) == [(1,)]
