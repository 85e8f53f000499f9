"""Rate arithmetic with exact numbers: wraps, resets, stalls and clocks."""

import pytest

from tslcd.telemetry.poller import agent_interval, octet_delta

GBIT = 1_000_000_000
MAX_OCTETS_1G_60S = GBIT * 60 / 8 * 1.05  # what a 1 Gbit/s link can count in 60 s, with the framing slack


def test_counter_going_up_is_the_delta():
    assert octet_delta(1_000, 76_000, 64, MAX_OCTETS_1G_60S) == 75_000


def test_stalled_counter_is_zero_not_a_gap():
    assert octet_delta(123_456, 123_456, 32, MAX_OCTETS_1G_60S) == 0


def test_32_bit_wrap_within_speed_is_the_wrapped_delta():
    # 2^32 - 1000 → 500: 1,500 octets counted across the wrap.
    assert octet_delta(2**32 - 1_000, 500, 32, MAX_OCTETS_1G_60S) == 1_500


def test_32_bit_wrap_beyond_speed_is_a_gap():
    # A 10 Mbit/s port counts at most 78,750,000 octets in 60 s; a wrap would need ~4.2e9.
    assert octet_delta(100_000_000, 5_000, 32, 10_000_000 * 60 / 8 * 1.05) is None


def test_64_bit_wrap_within_speed_is_the_wrapped_delta():
    assert octet_delta(2**64 - 10, 20, 64, MAX_OCTETS_1G_60S) == 30


def test_64_bit_counter_going_back_is_a_reset_gap():
    assert octet_delta(9_000_000_000, 1_000, 64, MAX_OCTETS_1G_60S) is None


def test_wrap_with_unknown_speed_is_a_gap():
    assert octet_delta(2**32 - 1_000, 500, 32, None) is None


def test_interval_from_sysuptime_when_it_agrees():
    # 60.03 s by the agent, 60.4 s by us (network delay): the agent's clock dates the counters.
    assert agent_interval(100_000, 106_003, 60.4) == pytest.approx(60.03)


def test_sysuptime_going_back_is_a_restart():
    assert agent_interval(500_000, 3_000, 60.0) is None


def test_sysuptime_losing_time_is_a_restart():
    # 5 s of uptime gained over 60 s: the agent restarted and counted up again past the old value.
    assert agent_interval(1_000, 1_500, 60.0) is None


def test_sysuptime_wrap_after_497_days_is_not_a_restart():
    assert agent_interval(2**32 - 3_000, 3_000, 60.0) == pytest.approx(60.0)


def test_agent_clock_ahead_of_ours_falls_back_to_ours():
    assert agent_interval(0, 12_000, 60.0) == 60.0


def test_stalled_sysuptime_is_a_gap():
    assert agent_interval(7_000, 7_000, 60.0) is None
