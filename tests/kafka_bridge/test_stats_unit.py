"""cluster_view: the pure sum of the gateways' snapshots."""

from kafka_bridge.stats import cluster_view


def snap(ts: int, **fields: object) -> dict[str, object]:
    return {"ts": ts, **fields}


def test_totals_add_up_and_stale_gateways_are_left_out() -> None:
    """Members and rates of a room add up over gateways; a gateway silent for longer than
    the stale bound is not counted; the worst produce p99 is the cluster's."""
    now = 100_000
    snapshots = {
        "a": snap(
            now - 1000,
            connections=3,
            rooms={"lobby": 3},
            room_rates={"lobby": 2.0},
            frames_out_per_s=10.0,
            produce_p99_ms=4.0,
            lag={"1": 2},
            drops=1,
        ),
        "b": snap(
            now - 2000,
            connections=2,
            rooms={"lobby": 1, "dev": 1},
            room_rates={"dev": 0.5},
            frames_out_per_s=5.0,
            produce_p99_ms=9.5,
            lag={"1": 3, "7": 1},
            drops=0,
        ),
        "gone": snap(now - 60_000, connections=50, rooms={"lobby": 50}),
    }
    view = cluster_view(snapshots, now_ms=now, stale_ms=15_000)
    assert view["count"] == 2 and sorted(view["gateways"]) == ["a", "b"]
    assert view["rooms"] == {"lobby": {"members": 4, "rate": 2.0}, "dev": {"members": 1, "rate": 0.5}}
    totals = view["totals"]
    assert totals["connections"] == 5 and totals["messages_per_s"] == 2.5
    assert totals["frames_out_per_s"] == 15.0 and totals["produce_p99_ms"] == 9.5
    assert totals["lag"] == 6 and totals["drops"] == 1


def test_no_gateway_means_empty_totals() -> None:
    """With no fresh snapshot, nothing is counted and p99 is unknown."""
    view = cluster_view({}, now_ms=1, stale_ms=15_000)
    assert view["count"] == 0 and view["rooms"] == {} and view["totals"]["produce_p99_ms"] is None
