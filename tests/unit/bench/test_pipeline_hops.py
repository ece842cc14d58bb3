"""bench.pipeline's hop table: each hop is the difference of two stamps the records carry."""

from __future__ import annotations

from bench.pipeline import hop_latencies

MS = 1_000_000


def test_every_hop_is_read_from_its_two_stamps_and_a_signal_without_answer_is_left_out() -> None:
    signal = {"signal_id": "a", "ts_event": 0, "ts_recv": 2 * MS, "ts_md_ack": 3 * MS, "ts_in": 5 * MS,
              "ts_emit": 6 * MS}
    order = {"ts_signal_ack": 7 * MS, "ts_in": 9 * MS, "ts_sent": 10 * MS, "ts_event": 12 * MS, "ts_recv": 13 * MS}
    unanswered = {**signal, "signal_id": "b"}

    hops = hop_latencies([signal, unanswered], {"a": order})

    assert hops == {
        "venue event -> feed receive": [2.0], "feed receive -> Kafka ack of the md record": [1.0],
        "Kafka ack -> streams input": [2.0], "streams input -> signal emitted": [1.0],
        "signal emitted -> Kafka ack of the signal": [1.0], "Kafka ack -> executor input": [2.0],
        "executor input -> order sent": [1.0], "order sent -> venue ack (venue clock)": [2.0],
        "order sent -> answer received": [3.0], "**tick -> signal**": [4.0], "**tick -> order sent**": [8.0],
    }


def test_a_missing_stamp_leaves_only_its_hops_out() -> None:
    signal = {"signal_id": "a", "ts_event": 0, "ts_recv": MS, "ts_md_ack": None, "ts_in": None, "ts_emit": 4 * MS}
    order = {"ts_signal_ack": None, "ts_in": 5 * MS, "ts_sent": 6 * MS, "ts_event": 7 * MS, "ts_recv": 8 * MS}

    hops = hop_latencies([signal], {"a": order})

    assert hops["Kafka ack -> streams input"] == [] and hops["Kafka ack -> executor input"] == []
    assert hops["**tick -> order sent**"] == [5.0] and hops["executor input -> order sent"] == [1.0]
