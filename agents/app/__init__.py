"""The composition layer: the command line, `doctor`, the daemon and the runtime wiring.

It sits at the top of the import graph: it builds agents, policies, wallets and chain
adapters from a deployment and hands them to each other. Nothing outside this package
imports it (tests/agents/test_composition.py checks), so the packages below stay usable
as libraries and no wiring hides inside them.
"""
