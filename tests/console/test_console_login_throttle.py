"""Refused logins per client address are throttled (agents/console/auth.py), so the form
cannot be used to flood every agent's audit log. The clock is passed in: no sleeping."""

from __future__ import annotations

from agents.console.auth import LoginThrottle


def test_the_sixth_refused_login_in_a_minute_waits_and_the_window_moves_on() -> None:
    throttle = LoginThrottle(limit=5, window=60.0)
    for second in range(5):
        # Negative control: below the limit every attempt may go ahead.
        assert throttle.wait("10.0.0.1", now=100.0 + second) == 0
        throttle.refused("10.0.0.1", now=100.0 + second)
    assert throttle.wait("10.0.0.1", now=110.0) == 50.0  # the oldest leaves at 160
    assert throttle.wait("10.0.0.2", now=110.0) == 0  # another address is not affected
    assert throttle.wait("10.0.0.1", now=160.0) == 0  # the window has moved on
    assert throttle.wait("10.0.0.1", now=300.0) == 0
    throttle.refused("10.0.0.1", now=300.0)
    assert throttle.wait("10.0.0.1", now=301.0) == 0  # one refusal is not five
