"""The tracker composes hygiene, geofences, ETAs and alerts: on a simulated rider with a known
truth, its outputs are the right events, a replayed record changes nothing, and a tracker
restored from its checkpoint records (``streams.state``) continues exactly as one that never stopped."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest

from schemas import events as ev
from schemas import topics as tp
from simulator.truth import GroundTruthDay, truth_day
from streams import state
from streams.domain.tracking import alerts
from streams.domain.tracking import zones as zn
from streams.domain.tracking.tracker import STATE_FORMAT, RiderLive, StaleState, Tracker, TrackerParams, events_of
from streams.workers.tracking import _fleet_snapshot


def _shift(day: GroundTruthDay) -> list[ev.RiderShiftStarted]:
    out = []
    for r in day.riders:
        t0 = r.route.occurred_at - timedelta(seconds=1)
        out.append(ev.RiderShiftStarted(
            event_id=f"shift-{r.rider_id}", occurred_at=t0, rider_id=r.rider_id, hub_id=r.route.hub_id,
            vehicle_type=r.vehicle_type, capacity_weight_kg=50.0, capacity_volume_l=100.0, capacity_units=40,
            shift_start=t0, shift_end=t0 + timedelta(hours=10), start=r.route.start))
    return out


@pytest.fixture(scope="module")
def day() -> GroundTruthDay:
    return truth_day(5, riders=2, stops_per_rider=4, noise_m=10.0)


def _feed(tracker: Tracker, day: GroundTruthDay, pings: slice = slice(None), setup: bool = True) -> list:
    out: list = []
    if setup:
        for i, s in enumerate(_shift(day)):
            out += tracker.on_shift(s, "riders", i)
        for i, r in enumerate(day.riders):
            out += tracker.on_route(r.route, "routes", i)
    for offset, obs in list(enumerate(day.pings))[pings]:
        out += tracker.on_ping(obs.ping, "gps", offset, obs.received_s)
    return out


def test_pings_become_arrivals_departures_status_and_etas(day: GroundTruthDay) -> None:
    out = _feed(Tracker(), day)
    arrivals = [e for e in events_of(out, tp.TRACKING) if isinstance(e, ev.ArrivedAtStop)]
    visited = {(v.rider_id, v.stop_id) for v in day.visits if not v.is_hub}
    stop_arrivals = {(a.rider_id, a.fence_id) for a in arrivals if a.kind is ev.FenceKind.STOP}
    assert len(stop_arrivals) >= len(visited) - 1  # 10 m noise: at most one stay lost to a GPS gap
    assert stop_arrivals <= {(r.rider_id, s.order_id) for r in day.riders for s in r.route.stops}
    assert all(a.order_id == a.fence_id and 0 <= a.confidence <= 1 for a in arrivals if a.kind is ev.FenceKind.STOP)
    departures = [e for e in events_of(out, tp.TRACKING) if isinstance(e, ev.DepartedStop)]
    assert len(departures) >= len(stop_arrivals) - len(day.riders)  # the last stop may still be in progress
    statuses = events_of(out, tp.INBOX)
    assert {(s.rider_id, s.order_id) for s in statuses} == stop_arrivals
    assert all(s.to_status is ev.OrderStatus.ARRIVED for s in statuses)
    etas = events_of(out, tp.ETAS)
    assert {e.order_id for e in etas} >= {s.order_id for r in day.riders for s in r.route.stops[1:]}
    assert all(e.eta_p50 <= e.eta_p90 for e in etas)
    # throttled: far fewer estimates than pings x stops
    assert len(etas) < len(day.pings) / 2


def test_a_replayed_record_changes_nothing(day: GroundTruthDay) -> None:
    tracker = Tracker()
    _feed(tracker, day, slice(0, 300))
    before = {k: state.encode("tracker-rider", r.snapshot()) for k, r in tracker.riders.items()}
    obs = day.pings[120]
    assert tracker.on_ping(obs.ping, "gps", 120, obs.received_s) == []
    assert {k: state.encode("tracker-rider", r.snapshot()) for k, r in tracker.riders.items()} == before
    assert tracker.stats["skipped_replay"] == 1


def test_a_restored_checkpoint_continues_like_an_uninterrupted_tracker(day: GroundTruthDay) -> None:
    whole = _feed(Tracker(), day)
    half = len(day.pings) // 2
    first = Tracker()
    before = _feed(first, day, slice(0, half))
    restored = Tracker()
    restored.riders = {k: RiderLive.restore(state.decode("tracker-rider", state.encode("tracker-rider", r.snapshot())),
                                            (None, r.route)) for k, r in first.riders.items()}
    checkpoint = state.FleetCheckpoint(first.now_s, first.fleet, STATE_FORMAT)
    restored.fleet = state.decode("tracker-fleet", state.encode("tracker-fleet", checkpoint)).fleet
    restored.now_s = first.now_s
    restored._tick_at_s = first._tick_at_s
    # the records before the checkpoint are delivered again (committed offsets lag): all skipped
    again = _feed(restored, day, slice(half - 50, half), setup=True)
    assert again == []
    after = _feed(restored, day, slice(half, None), setup=False)
    assert [o[1].event_id for o in before + after] == [o[1].event_id for o in whole]
    assert [dataclasses.astuple(o[1]) for o in before + after] == [dataclasses.astuple(o[1]) for o in whole]


def test_a_late_rider_gets_a_delay_risk_alert(day: GroundTruthDay) -> None:
    rider = day.riders[0]
    route = rider.route
    tight = dataclasses.replace(route, stops=tuple(
        dataclasses.replace(s, window_start=None, window_end=route.planned_start + timedelta(minutes=1))
        for s in route.stops))
    late = dataclasses.replace(day, riders=(dataclasses.replace(rider, route=tight),),
                               pings=tuple(o for o in day.pings if o.ping.rider_id == rider.rider_id))
    out = _feed(Tracker(), late)
    alerts = events_of(out, tp.ALERTS)
    kinds = {a.kind for a in alerts}
    assert "delay_risk" in kinds or "sla_breach" in kinds
    assert {a.rider_id for a in alerts} == {rider.rider_id}
    # the late estimates also reach the hub's dispatcher (the re-planner), keyed by hub
    to_dispatch = [o for o in out if o[0] is tp.DISPATCH_QUEUE and isinstance(o[1], ev.EtaUpdated)]
    assert to_dispatch and all(o[2] == route.hub_id and o[1].eta_p50 > o[1].occurred_at for o in to_dispatch)
    on_time = [o for o in _feed(Tracker(), day) if o[0] is tp.DISPATCH_QUEUE and isinstance(o[1], ev.EtaUpdated)]
    assert not on_time


def test_custom_zones_give_entered_dwelled_and_exited_events(day: GroundTruthDay) -> None:
    rider = day.riders[0]
    stop = rider.route.stops[1]
    d = 0.004  # a square of ~900 m around the second stop
    square = [[stop.lon - d, stop.lat - d], [stop.lon + d, stop.lat - d], [stop.lon + d, stop.lat + d],
              [stop.lon - d, stop.lat + d], [stop.lon - d, stop.lat - d]]
    zones = zn.zones_from_geojson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone_id": "market"}, "geometry": {"type": "Polygon", "coordinates": [square]}}]},
        zn.ZoneParams(dwell_s=60.0))
    out = _feed(Tracker(TrackerParams(zones=zones, zone_params=zn.ZoneParams(dwell_s=60.0))), day)
    mine = [e for e in events_of(out, tp.TRACKING) if isinstance(e, ev.ZoneEvent) and e.rider_id == rider.rider_id]
    kinds = [e.kind for e in mine]
    assert kinds[:3] == [ev.ZoneEventKind.ENTERED, ev.ZoneEventKind.DWELLED, ev.ZoneEventKind.EXITED]
    visit = next(v for v in day.visits if v.stop_id == stop.order_id)
    assert mine[0].at.timestamp() < visit.arrival_s < mine[2].at.timestamp()
    assert all(e.zone_id == "market" for e in mine)


def test_a_zones_file_that_is_not_geojson_polygons_is_refused() -> None:
    with pytest.raises(ValueError, match="feature 0 has no"):
        zn.zones_from_geojson({"type": "FeatureCollection", "features": [{"geometry": {"type": "Polygon"}}]})
    with pytest.raises(ValueError, match="is not a Polygon"):
        zn.zones_from_geojson({"type": "FeatureCollection", "features": [
            {"id": "z", "geometry": {"type": "Point", "coordinates": [77.6, 12.9]}}]})


def test_a_snapshot_and_its_plan_restore_the_rider(day: GroundTruthDay) -> None:
    tracker = Tracker()
    _feed(tracker, day, slice(0, len(day.pings) // 2))
    rider = tracker.riders[day.riders[0].rider_id]
    snap = state.decode("tracker-rider", state.encode("tracker-rider", rider.snapshot()))
    assert snap["route"] is None and snap["route_id"] == rider.route.route_id
    back = RiderLive.restore(snap, (None, rider.route))
    assert back.__getstate__() == rider.__getstate__() and back.eta.route == rider.eta.route
    # the plan it was on was replaced before the rider was written: no ETA state for a plan it lacks
    other = dataclasses.replace(rider.route, route_id="newer")
    orphan = RiderLive.restore(snap, (None, other))
    assert orphan.route is None and orphan.eta is None and orphan.device == rider.device


def test_state_written_by_another_version_is_refused_not_misread(day: GroundTruthDay) -> None:
    """A worker upgraded over a checkpoint of other state classes must not load it as its own."""
    tracker = Tracker()
    _feed(tracker, day, slice(0, len(day.pings) // 4))
    rider = tracker.riders[day.riders[0].rider_id]
    old = rider.snapshot()
    old["format"] = STATE_FORMAT - 1
    with pytest.raises(StaleState, match=f"format {STATE_FORMAT - 1}"):
        RiderLive.restore(old, (None, rider.route))
    del old["format"]  # written before formats were recorded
    with pytest.raises(StaleState):
        RiderLive.restore(old, (None, rider.route))
    # the fleet's learning: the current format loads, an older layout is dropped (learning starts over)
    fleet = state.FleetCheckpoint(5.0, tracker.fleet, STATE_FORMAT)
    assert _fleet_snapshot(state.encode("tracker-fleet", fleet))[1].model == tracker.fleet.model
    assert _fleet_snapshot(state.encode("tracker-fleet", fleet._replace(format=STATE_FORMAT - 1))) is None


def _elsewhere(ping: ev.GpsPing, after_s: float) -> ev.GpsPing:
    """Another rider's ping ``after_s`` later, on another partition: it moves that partition's clock."""
    t = ping.occurred_at + timedelta(seconds=after_s)
    return dataclasses.replace(ping, event_id=f"far-{after_s}", rider_id="rider-far", device_id="far",
                               occurred_at=t, device_time=t)


def _driving(tracker: Tracker, day: GroundTruthDay, rider: str, partition: int | None) -> tuple[list, int]:
    """Feed the day until ``rider`` is driving between stops; the index of its next ping."""
    out = _feed(tracker, day, slice(0, 0))
    k = 0
    while not (day.pings[k].ping.rider_id == rider and tracker.riders[rider].alert.progress.task is alerts.Task.DRIVING):
        out += tracker.on_ping(day.pings[k].ping, "gps", k, day.pings[k].received_s, partition=partition)
        k += 1
    return out, k


def test_a_rider_silent_out_on_the_route_goes_to_the_dispatcher_and_so_does_its_first_fix_back(
        day: GroundTruthDay) -> None:
    tracker = Tracker(TrackerParams(position_every_s=math.inf))  # no fix a minute: only the one back
    quiet = day.riders[0].rider_id
    hub = day.riders[0].route.hub_id
    out, k = _driving(tracker, day, quiet, None)
    pings = list(enumerate(day.pings))
    silent_until = day.pings[k].received_s + 480  # the device drops out for 8 minutes
    for i, o in pings[k:]:
        if o.ping.rider_id != quiet or o.received_s >= silent_until:  # the other rider moves stream time on
            out += tracker.on_ping(o.ping, "gps", i, o.received_s)
    offline = [e for e in events_of(out, tp.ALERTS) if e.kind == "rider_offline"]
    assert [e.rider_id for e in offline] == [quiet]
    forwarded = [(o[1], o[2]) for o in out if o[0] is tp.DISPATCH_QUEUE
                 and isinstance(o[1], ev.AlertRaised | ev.GpsPing) and o[1].rider_id == quiet]
    assert [type(e) for e, _ in forwarded] == [ev.AlertRaised, ev.GpsPing]  # once each
    assert forwarded[0] == (offline[0], hub) and forwarded[1][1] == hub
    back = next(o.ping for _, o in pings[k:] if o.ping.rider_id == quiet and o.received_s >= silent_until)
    assert forwarded[1][0].device_time >= back.device_time


def test_a_shift_ending_ahead_of_a_gps_backlog_makes_no_rider_look_silent(day: GroundTruthDay) -> None:
    """A loaded worker's ``gps`` backlog trails the few, current shift and plan records: a shift
    that ends ten minutes ahead of the pings read so far says nothing about the pinging riders.
    Silence is judged by the pings' clock, so it still finds a phone that really went quiet."""
    tracker = Tracker()
    quiet = day.riders[0].rider_id
    out, k = _driving(tracker, day, quiet, None)
    pings = list(enumerate(day.pings))
    heard = tracker.now_s
    ahead = heard + 600
    end = ev.RiderShiftEnded(event_id="end-1", occurred_at=datetime.fromtimestamp(ahead, UTC),
                             rider_id="rider-elsewhere")
    out = tracker.on_shift(end, "riders", 99) + tracker.tick()
    assert tracker.now_s == heard  # a shift is no news of the phones
    assert [e for e in events_of(out, tp.ALERTS) if e.kind in {"rider_offline", "device_silent"}] == []
    # the backlog drains: the first rider goes quiet for 8 minutes while the other pings on
    silent_from = pings[k][1].received_s
    for i, o in pings[k:]:
        if o.ping.rider_id != quiet or o.received_s >= silent_from + 480:
            out += tracker.on_ping(o.ping, "gps", i, o.received_s)
    offline = [e for e in events_of(out, tp.ALERTS) if e.kind == "rider_offline"]
    assert [e.rider_id for e in offline] == [quiet] and offline[0].occurred_at.timestamp() >= silent_from + 300


def _skewed(day: GroundTruthDay, partitions: tuple[int, int] | None) -> tuple[list, str]:
    """A rider driving on partition 1 while partition 0 is read ten minutes ahead of it, then
    partition 1 catches up. ``partitions=None``: the worker does not say where pings came from."""
    tracker = Tracker()
    late, ahead = partitions or (None, None)
    rider = day.riders[0].rider_id
    out, k = _driving(tracker, day, rider, late)
    start = day.pings[k]
    for s in range(0, 600, 20):  # partition 0 read ahead: ten minutes of another rider
        out += tracker.on_ping(_elsewhere(start.ping, s), "gps", 10_000 + s, start.received_s + s, partition=ahead)
    for i in range(k, len(day.pings)):  # then partition 1's backlog
        o = day.pings[i]
        if o.ping.rider_id == rider and o.received_s < start.received_s + 600:
            out += tracker.on_ping(o.ping, "gps", i, o.received_s, partition=late)
    return out, rider


def test_a_partition_read_minutes_late_makes_none_of_its_riders_look_silent(day: GroundTruthDay) -> None:
    """A worker reads its ``gps`` partitions unevenly under load: a rider is judged by the clock
    of its own partition. Judged by the fleet's clock (the worker not saying), the same reading
    would have called the late partition's rider offline."""
    out, rider = _skewed(day, (1, 0))
    assert [e for e in events_of(out, tp.ALERTS) if e.rider_id == rider
            and e.kind in {"rider_offline", "device_silent"}] == []
    out, rider = _skewed(day, None)
    assert {e.rider_id for e in events_of(out, tp.ALERTS) if e.kind == "rider_offline"} == {rider}


def test_a_partition_read_to_its_end_still_finds_its_silent_rider(day: GroundTruthDay) -> None:
    """All the riders of a partition silent: its clock stands, and only the worker saying it has
    read the partition to its end lets the silence count."""
    for read_to_end in (False, True):
        tracker = Tracker()
        quiet = day.riders[0].rider_id
        out, k = _driving(tracker, day, quiet, 1)
        start = day.pings[k]
        for s in range(0, 480, 20):  # the quiet rider's phone is off; partition 0 goes on
            out += tracker.on_ping(_elsewhere(start.ping, s), "gps", 10_000 + s, start.received_s + s, partition=0)
            if read_to_end:
                tracker.caught_up([0, 1])  # the worker, each step: nothing fetched is left on either
        offline = [e for e in events_of(out, tp.ALERTS) if e.kind == "rider_offline"]
        assert [e.rider_id for e in offline] == ([quiet] if read_to_end else [])
        assert all(e.occurred_at.timestamp() >= start.received_s + 300 for e in offline)


def test_a_silent_rider_is_judged_at_the_end_of_the_last_batch_without_waiting_for_more_pings(
        day: GroundTruthDay) -> None:
    """The other partition's eight minutes come in one batch: its pings' own ticks judge the quiet
    partition by its old clock. The end of the step, when the worker says both were read to their
    end, judges it again at once; without that word it stays unjudged."""
    for read_to_end in (False, True):
        tracker = Tracker()
        quiet = day.riders[0].rider_id
        out, k = _driving(tracker, day, quiet, 1)
        start = day.pings[k]
        tracker.caught_up([0, 1])
        for s in range(0, 480, 20):  # one batch: no word from the worker until its end
            out += tracker.on_ping(_elsewhere(start.ping, s), "gps", 10_000 + s, start.received_s + s, partition=0)
        assert [e for e in events_of(out, tp.ALERTS) if e.kind == "rider_offline"] == []
        if read_to_end:
            tracker.caught_up([0, 1])
        out = tracker.tick()
        assert [e.rider_id for e in events_of(out, tp.ALERTS) if e.kind == "rider_offline"] == \
            ([quiet] if read_to_end else [])


def test_a_moving_rider_on_a_route_has_its_first_fix_of_every_minute_sent_to_its_hubs_dispatcher(
        day: GroundTruthDay) -> None:
    out = _feed(Tracker(), day)
    hub = {r.rider_id: r.route.hub_id for r in day.riders}
    sent = [(o[1], o[2]) for o in out if o[0] is tp.DISPATCH_QUEUE and isinstance(o[1], ev.GpsPing)]
    assert sent and all(h == hub[p.rider_id] for p, h in sent)
    for rider in hub:
        mine = [p for p, _ in sent if p.rider_id == rider]
        minutes = [int(p.device_time.timestamp() // 60) for p in mine]
        assert minutes == sorted(set(minutes)), rider  # one a minute at most, in order
        pinged = {int(o.ping.device_time.timestamp() // 60) for o in day.pings if o.ping.rider_id == rider}
        assert 0.2 * len(pinged) <= len(minutes) < 0.9 * len(pinged), rider  # the minutes it rode, not those it stood
        moving = sum((p.speed_mps or 0.0) > 0.5 for p in mine)
        assert moving >= 0.9 * len(mine), rider  # riding, not standing at a door or the hub (GPS noise aside)
