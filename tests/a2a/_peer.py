"""Another operator's deployment as the A2A tests and bench see it: one agent on one
local EVM chain (its card is built from this)."""

from __future__ import annotations

from config.models import Deployment


def other_operator(agent: str = "seller") -> Deployment:
    """A deployment of one agent `agent` on chain `arb` (chain id 31337)."""
    return Deployment.model_validate(
        {
            "name": "theirs",
            "operator": {"name": "other-operator"},
            "chains": [{"name": "arb", "family": "evm", "chain_id": 31337, "rpc": "local"}],
            "assets": [{"symbol": "ETH", "chain": "arb", "native": True, "decimals": 18}],
            "planners": [{"name": "s", "kind": "scripted"}],
            "agents": [
                {
                    "name": agent,
                    "schedule": {"every": "1h"},
                    "mandate": "Swap ETH at a fair price.",
                    "planner": "s",
                    "chains": ["arb"],
                }
            ],
        }
    )
