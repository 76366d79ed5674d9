"""Agents: plans and planners, the audit log, and (soon) the runtime that ticks them."""
