"""KillSwitch: halt one agent or all of them, from the CLI or by creating a file."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from policies._tables import GLOBAL, kill_switches
from policies.actions import ProposedAction
from policies.base import ALLOW, Decision, Deny, Policy, PolicyContext, PolicyEnv


class KillSwitchParams(BaseModel):
    """Extra files whose existence halts the agent, besides the default ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    files: list[str] = Field(
        default_factory=list,
        description="Paths (relative to the data directory) that halt this agent when present.",
    )


class KillSwitch(Policy):
    """Deny everything while the agent (or every agent) is halted.

    Halted by `agents halt AGENT|--all` (a row in the store, seen within the engine's
    control poll interval) or instantly by a file: `<data_dir>/halt/<agent>`,
    `<data_dir>/halt/all`, or any path in `files`.
    """

    Params = KillSwitchParams

    def __init__(self, params: KillSwitchParams | None = None) -> None:
        super().__init__(params)
        self._files: tuple[Path, ...] = ()
        self._halted: dict[str, str] = {}
        self._agent = ""

    def attach(self, env: PolicyEnv) -> None:
        """Resolve the halt files and load halts from the store."""
        self._agent = env.agent.name
        assert isinstance(self.params, KillSwitchParams)
        base = Path(env.deployment.data_dir or ".")
        files = [base / "halt" / "all", base / "halt" / env.agent.name]
        self._files = tuple(files + [base / name for name in self.params.files])
        store = env.store
        if store is not None:

            def reload() -> None:
                rows = store.read(sa.select(kill_switches.c.target, kill_switches.c.reason))
                self._halted = {row.target: row.reason for row in rows}

            reload()
            env.on_control_change(reload)

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Decision:
        """Deny if a halt row or a halt file applies to this agent."""
        for target in (GLOBAL, self._agent):
            if target in self._halted:
                who = "every agent" if target == GLOBAL else f"agent {target!r}"
                return Deny(
                    reason=f"{who} is halted ({self._halted[target]}); resume with "
                    f"`agents resume {'--all' if target == GLOBAL else target}`"
                )
        for path in self._files:
            if path.exists():
                return Deny(reason=f"halted by the file {path}; delete it to resume")
        return ALLOW
