"""Agents: the runtime and daemon that tick them, plans and planners, observations, the
audit log."""
