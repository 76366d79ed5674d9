"""Allowlist: default deny; recipients, contracts and programs by address-book name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from config.models import AgentConfig, Deployment
from config.types import Name
from policies.actions import Intent, ProposedAction
from policies.base import ALLOW, AddressResolver, Decision, Deny, Policy, PolicyContext, PolicyEnv

Selector = Annotated[str, Field(pattern=r"^0x[0-9a-f]{8}$")]


class AllowlistParams(BaseModel):
    """Who an agent may pay or call, by address-book name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipients: list[Name] = Field(default_factory=list, description="For transfers and swaps.")
    contracts: dict[Name, list[Selector]] = Field(
        default_factory=dict, description="Contract name -> allowed 4-byte selectors."
    )
    programs: list[Name] = Field(default_factory=list, description="Solana programs.")


class Allowlist(Policy):
    """Deny anything not explicitly listed.

    The action's resolved address must equal, character for character, the address the
    address book holds for that name on that chain: a lookalike (same first and last
    characters, different case or digits in between) is denied, and so is a correct
    address written without its checksum.
    """

    Params = AllowlistParams

    def __init__(self, params: AllowlistParams) -> None:
        super().__init__(params)
        self._recipients = frozenset(params.recipients)
        self._contracts = {name: frozenset(sel) for name, sel in params.contracts.items()}
        self._programs = frozenset(params.programs)
        self._book: dict[tuple[str, str], str] = {}
        self._agents: dict[str, str] = {}
        self._resolve: AddressResolver | None = None
        self._peers: set[str] = set()
        self._resolve_peer: AddressResolver | None = None

    @classmethod
    def problems(
        cls, params: BaseModel, deployment: Deployment, agent: AgentConfig
    ) -> Sequence[str]:
        """Every listed name must be in the address book (and the agent's counterparties)."""
        assert isinstance(params, AllowlistParams)
        known = {entry.name for entry in deployment.address_book}
        names = [*params.recipients, *params.contracts, *params.programs]
        found = [f"{name!r} is not in the address book" for name in names if name not in known]
        if agent.counterparties:
            found += [
                f"{name!r} is not among agent {agent.name!r}'s counterparties"
                for name in names
                if name in known and name not in agent.counterparties
            ]
        return found

    def attach(self, env: PolicyEnv) -> None:
        """Index the address book: (name, chain) -> the one accepted address."""
        for entry in env.deployment.address_book:
            for chain, address in entry.addresses.items():
                self._book[(entry.name, chain)] = address
            if entry.agent is not None:
                self._agents[entry.name] = entry.agent
            if entry.remote:
                self._peers.add(entry.name)
        self._resolve = env.resolve_agent_address
        self._resolve_peer = env.resolve_peer_address

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Allow only a listed name, whose book address is exactly the resolved one."""
        listed = self._listed(action)
        if listed is not None:
            return listed
        expected = self._expected_address(action.recipient, action.chain)
        if expected is None:
            return Deny(
                reason=f"{action.recipient!r} has no address on {action.chain} in the address book"
            )
        if action.recipient_address != expected:
            return Deny(
                reason=f"address {action.recipient_address!r} is not the address-book address "
                f"of {action.recipient!r} on {action.chain} ({expected}); refusing a lookalike"
            )
        return ALLOW

    def screen(self, intent: Intent, ctx: PolicyContext) -> str | None:
        """A recipient not listed is denied whatever its address."""
        if intent.kind in ("transfer", "swap_leg") and intent.recipient not in self._recipients:
            return f"recipient {intent.recipient!r} is not in the allowlist (default deny)"
        return None

    def _listed(self, action: ProposedAction) -> Deny | None:
        name = action.recipient
        if action.kind == "contract_call":
            selectors = self._contracts.get(name)
            if selectors is None:
                return Deny(reason=f"contract {name!r} is not in the allowlist's contracts")
            if action.selector not in selectors:
                return Deny(
                    reason=f"function selector {action.selector} is not allowed on {name!r}; "
                    f"allowed: {', '.join(sorted(selectors)) or 'none'}"
                )
            return None
        allowed = self._programs if action.kind == "program_call" else self._recipients
        if name not in allowed:
            what = "program" if action.kind == "program_call" else "recipient"
            return Deny(reason=f"{what} {name!r} is not in the allowlist (default deny)")
        return None

    def _expected_address(self, name: str, chain: str) -> str | None:
        address = self._book.get((name, chain))
        if address is not None:
            return address
        agent = self._agents.get(name)
        if agent is not None and self._resolve is not None:
            return self._resolve(agent, chain)
        if name in self._peers and self._resolve_peer is not None:
            try:
                return self._resolve_peer(name, chain)
            except Exception:  # an unverified card: no address is the address-book's
                return None
        return None
