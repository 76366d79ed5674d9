"""The policy engine: the one place an :class:`Authorization` is minted.

For each action the engine reserves its amount in the spend ledger, asks the agent's
policies in order, and answers:

* :class:`Denied` if any policy denies (or raises: that is a deny, logged with the cause);
* :class:`Queued` if none denies and one needs approval that no approved, unexpired
  request for this exact action covers;
* :class:`Authorized` otherwise, carrying an authorization bound to the agent, the
  transaction digest and a short expiry, minted only after the state that justified it
  (reservations, rate events, probes) is durably written.

The mint's key lives in this object's memory only; signers get :attr:`PolicyEngine.verifier`.
Evaluations that finish in the same turn of the event loop (those a group commit
released together, or concurrent ones without a store) get their authorizations under
one signature (see :class:`_BatchMint`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine as SqlEngine

from config.errors import PolicyViolation, StoreError
from config.models import Deployment
from policies._store import PolicyStore, WriteSet
from policies.actions import ConfidenceEvidence, Intent, ProposedAction
from policies.approvals import ApprovalRequest, Approvals
from policies.base import (
    ALLOW,
    AddressResolver,
    Allow,
    AuthorityClaims,
    Clock,
    Decision,
    Deny,
    NeedsApproval,
    Policy,
    PolicyContext,
    PolicyEnv,
    PriceSource,
    SimulationResult,
    SystemClock,
)
from policies.grants import PlanGrants
from policies.ledger import Entry, SpendLedger
from policies.prices import FeedPrices, usd_value
from policies.registry import build_policies
from policies.shared_limits import OverDeploymentLimit
from wallets.authorization import (
    MAX_BATCH,
    Authorization,
    AuthorizationMint,
    AuthorizationVerifier,
    LeaseEpochs,
)

logger = logging.getLogger("covenant.policies")

DEFAULT_APPROVAL_TTL = timedelta(hours=1)


class _Outcome(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class Authorized(_Outcome):
    """Every policy allowed; hand `authorization` to the signer with the transaction."""

    verdict: Literal["authorized"] = "authorized"
    authorization: Authorization
    approval_id: str | None = None


class Denied(_Outcome):
    """A policy (or the engine, when `policy` is None) refused the action."""

    verdict: Literal["denied"] = "denied"
    reason: str
    policy: str | None = None
    cause: Literal["policy", "price"] = "policy"


class Queued(_Outcome):
    """The action waits for a person: `approvals approve ID` then evaluate it again."""

    verdict: Literal["queued"] = "queued"
    reason: str
    policy: str
    approval_id: str | None
    expires_at: datetime | None = None


Outcome = Authorized | Denied | Queued


@dataclass(slots=True)
class _Pending:
    """What to undo if an evaluation ends without an authorization."""

    action: ProposedAction
    ctx: PolicyContext
    asked: list[Policy]
    entry: Entry


@dataclass(slots=True)
class _Stack:
    policies: tuple[Policy, ...]
    env: PolicyEnv


@dataclass(slots=True)
class _Grant:
    """One authorization to mint, and where the minted one goes."""

    agent: str
    digest: bytes
    authorization: Authorization | None = None


class _BatchMint:
    """Mints authorizations in batches, one Ed25519 signature per batch.

    With a store, a group commit hands its evaluations' grants to :meth:`seal` before
    waking them, so each batch is the commit's. Otherwise (or when an evaluation had
    nothing to write) :meth:`mint` gathers the requests of one turn of the event loop:
    the first schedules the batch for the next turn, so every evaluation that reaches
    it in this turn joins; a lone evaluation waits one turn.
    """

    def __init__(self, mint: AuthorizationMint, ttl: timedelta) -> None:
        self._mint = mint
        self._ttl = ttl
        self._queue: list[tuple[_Grant, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        """Signatures made so far (for benchmarks and diagnostics)."""

    def seal(self, grants: Sequence[_Grant]) -> None:
        """Mint every grant's authorization now."""
        for start in range(0, len(grants), MAX_BATCH):
            chunk = grants[start : start + MAX_BATCH]
            minted = self._mint.mint_many([(g.agent, g.digest) for g in chunk], self._ttl)
            self.batches += 1
            for grant, authorization in zip(chunk, minted, strict=True):
                grant.authorization = authorization

    async def mint(self, grant: _Grant) -> Authorization:
        """The grant's authorization, minted with the others asked for in this turn."""
        loop = asyncio.get_running_loop()
        if not self._queue or self._loop is not loop:
            # A queue left by a loop that stopped before its turn came is dropped:
            # nobody can await those futures any more.
            self._queue, self._loop = [], loop
            loop.call_soon(self._flush)
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((grant, future))
        await future
        assert grant.authorization is not None
        return grant.authorization

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        waiting = [(g, f) for g, f in queue if not f.done()]  # skip cancelled ones
        try:
            self.seal([grant for grant, _ in waiting])
        except Exception as exc:  # e.g. a bad digest: nobody in the batch is authorized
            for _, future in waiting:
                future.set_exception(exc)
            return
        for _, future in waiting:
            future.set_result(None)


class PolicyEngine:
    """Runs each agent's ordered policies and mints authorizations for what they allow."""

    def __init__(
        self,
        deployment: Deployment,
        store: SqlEngine | None = None,
        *,
        clock: Clock | None = None,
        prices: PriceSource | None = None,
        resolve_agent_address: AddressResolver | None = None,
        resolve_peer_address: AddressResolver | None = None,
        authorization_ttl: timedelta = timedelta(minutes=2),
        control_poll: timedelta = timedelta(seconds=1),
        policies: dict[str, Sequence[Policy]] | None = None,
        lease_epochs: LeaseEpochs | None = None,
    ) -> None:
        """With `lease_epochs` (cluster mode) the engine shares its store with other
        daemons' engines: it does not claim the whole store (each agent's lease fences
        its writes instead, `config/fencing.py`), authorizations carry the agent's lease
        epoch, and :meth:`reload_agents` reads agents' state again when they are won."""
        self.deployment = deployment
        self.clock: Clock = clock or SystemClock()
        self.prices: PriceSource = prices or FeedPrices(deployment, self.clock)
        self._store = PolicyStore(store) if store is not None else None
        if self._store is not None and lease_epochs is None:
            # Before any state is loaded: whatever an older engine commits after this
            # point fails, so what the loads below read is final (see policies._store).
            self._store.claim(self.clock.now())
        self._approvals = Approvals(self._store) if self._store is not None else None
        self.ledger = SpendLedger(self._store, shared=lease_epochs is not None)
        self._grants = PlanGrants(self._store, self.clock)
        self._mint = AuthorizationMint(epochs=lease_epochs)
        self._ttl = authorization_ttl
        self._batch_mint = _BatchMint(self._mint, authorization_ttl)
        if self._store is not None:
            self._store.on_commit = self._batch_mint.seal
        self._poll_every = control_poll.total_seconds()
        self._decimals = {(a.chain, a.symbol): a.decimals for a in deployment.assets}
        self._resolve_peer = resolve_peer_address
        self._resolve, self._overrides = resolve_agent_address, policies
        self._stacks = {
            agent.name: self._stack(agent.name, resolve_agent_address, policies)
            for agent in deployment.agents
        }
        self.ledger.load(self.clock.now())
        self._control = self._store.control_version() if self._store else 0
        self._next_poll = time.monotonic() + self._poll_every

    @property
    def verifier(self) -> AuthorizationVerifier:
        """The public half of the mint, for signers."""
        return self._mint.verifier

    @property
    def signatures(self) -> int:
        """Authorization signatures made for evaluations so far (one per batch)."""
        return self._batch_mint.batches

    @property
    def group_commits(self) -> tuple[int, int]:
        """(transactions, rows) group commit has written so far; (0, 0) without a store."""
        if self._store is None:
            return (0, 0)
        return (self._store.group_commits, self._store.group_committed_rows)

    def policies(self, agent: str) -> tuple[Policy, ...]:
        """The agent's policies, in evaluation order."""
        return self._stacks[agent].policies

    def context(
        self,
        agent: str,
        *,
        plan_id: str,
        evidence: ConfidenceEvidence | None,
        claims: AuthorityClaims | None = None,
        plan_actions: Sequence[ProposedAction] = (),
        simulation: SimulationResult | None = None,
    ) -> PolicyContext:
        """A context for evaluating the actions of one plan of `agent`."""
        return PolicyContext(
            agent=self.deployment.agent(agent),
            deployment=self.deployment,
            plan_id=plan_id,
            evidence=evidence,
            clock=self.clock,
            prices=self.prices,
            spend=self.ledger,
            claims=claims,
            plan_actions=tuple(plan_actions),
            simulation=simulation,
        )

    async def drain(self) -> None:
        """Wait for the policy state still being committed (before a daemon stops)."""
        if self._store is not None:
            await self._store.drain()

    async def evaluate(self, action: ProposedAction, ctx: PolicyContext) -> Outcome:
        """Authorize, deny or queue `action`."""
        problem = self._check_action(action, ctx)
        if problem is not None:
            return Denied(reason=problem)
        self._poll_control()
        stack = self._stacks[action.agent]
        with self._writes() as writes:
            entry = self.ledger.reserve(action, self._usd(action), self.clock.now())
            asked, answer = await self._ask_all(stack.policies, action, ctx)
            outcome = self._approval(action, answer) if isinstance(answer, Queued) else answer
            pending = _Pending(action, ctx, asked, entry)
            if isinstance(outcome, Allow | ApprovalRequest):
                approved = outcome if isinstance(outcome, ApprovalRequest) else None
                self._grants.stage(action)
                return await self._authorize(pending, writes, approved)
            await self._decline(pending, writes, outcome)
            return outcome

    def reload_agents(self, agents: Collection[str]) -> None:
        """Cluster mode: forget `agents`' policy state and read it from the store again
        (their spend entries, and their policies attached afresh: breaker, rate and
        duplicate windows), because another daemon held them and wrote meanwhile. Call
        before anything is evaluated for them after they were won."""
        if not agents:
            return
        self.ledger.reload_agents(agents, self.clock.now())
        for agent in agents:
            if self.ledger.shared_limits is not None:
                self.ledger.shared_limits.forget(agent)
            self._stacks[agent] = self._stack(agent, self._resolve, self._overrides)

    def screen(self, intent: Intent) -> str | None:
        """Why `intent` would be denied whatever transaction carried it ("Policy: reason"),
        or None if the agent's policies might allow it. Nothing is reserved or recorded."""
        self._poll_control()
        ctx = self.context(intent.agent, plan_id="screen", evidence=None)
        for policy in self._stacks[intent.agent].policies:
            try:
                reason = policy.screen(intent, ctx)
            except Exception:  # a policy that cannot screen has no opinion; evaluate judges
                logger.exception("policy %s could not screen %s", policy.name, intent)
                continue
            if reason is not None:
                return f"{policy.name}: {reason}"
        return None

    def authorize_settlement(self, agent: str, plan_id: str, digest: bytes) -> Authorization:
        """Authorize a claim or refund of escrow plan `plan_id` (the transaction with
        `digest`): only if this engine once authorized a lock of that plan for `agent`.
        No policy is asked: settlement moves only escrowed funds, to the recipient fixed
        when the policies allowed the lock or back to the agent (see policies.grants).
        """
        if agent not in self._stacks:
            raise PolicyViolation(f"unknown agent {agent!r}; nothing is authorized for it")
        if not self._grants.granted(agent, plan_id):
            raise PolicyViolation(
                f"plan {plan_id!r} of agent {agent!r} has no authorized escrow lock, so "
                "none of its claims or refunds can be authorized"
            )
        return self._mint.mint(agent, digest, self._ttl)

    async def plan_observed(
        self, agent: str, plan_id: str, evidence: ConfidenceEvidence | None
    ) -> None:
        """Show the agent's policies a plan before its actions, even a plan with none:
        an empty or malformed plan still counts toward the confidence breaker."""
        ctx = self.context(agent, plan_id=plan_id, evidence=evidence)
        with self._writes() as writes:
            for policy in self._stacks[agent].policies:
                await self._hook(policy, policy.on_plan(ctx))
            await self._commit(writes, authorized=True)

    async def executed(self, action: ProposedAction, ctx: PolicyContext) -> None:
        """Report that the authorized transaction executed; settles its reservation."""
        with self._writes() as writes:
            self.ledger.settle(action.digest)
            for policy in self._stacks[action.agent].policies:
                await self._hook(policy, policy.on_executed(action, ctx))
            await self._commit(writes, authorized=True)

    async def failed(self, action: ProposedAction, ctx: PolicyContext, reason: str) -> None:
        """Report that the authorized transaction failed or was not sent; releases it."""
        with self._writes() as writes:
            self.ledger.release(action.digest, persist=True)
            for policy in self._stacks[action.agent].policies:
                await self._hook(policy, policy.on_failed(action, ctx, reason))
            await self._commit(writes, authorized=True)

    def _stack(
        self,
        agent: str,
        resolve: AddressResolver | None,
        overrides: dict[str, Sequence[Policy]] | None,
    ) -> _Stack:
        config = self.deployment.agent(agent)
        if overrides is not None and agent in overrides:
            policies = tuple(overrides[agent])
        else:
            policies = tuple(build_policies(self.deployment, agent))
        env = PolicyEnv(
            deployment=self.deployment,
            agent=config,
            clock=self.clock,
            prices=self.prices,
            ledger=self.ledger,
            store=self._store,
            resolve_agent_address=resolve,
            resolve_peer_address=self._resolve_peer,
        )
        for policy in policies:
            policy.attach(env)
        return _Stack(policies, env)

    def _check_action(self, action: ProposedAction, ctx: PolicyContext) -> str | None:
        return self._check_binding(action, ctx) or self._check_amount(action, ctx)

    def _check_binding(self, action: ProposedAction, ctx: PolicyContext) -> str | None:
        stack = self._stacks.get(action.agent)
        if stack is None or ctx.agent.name != action.agent:
            return (
                f"action of agent {action.agent!r} evaluated in the context of {ctx.agent.name!r}"
            )
        if not stack.policies:
            return f"agent {action.agent!r} has no policies; nothing is authorized without any"
        if ctx.plan_id != action.plan_id:
            # The context's confidence evidence belongs to its plan, not to this action's.
            return f"action of plan {action.plan_id!r} evaluated with plan {ctx.plan_id!r}"
        return None

    def _check_amount(self, action: ProposedAction, ctx: PolicyContext) -> str | None:
        if action.chain not in ctx.agent.chains:
            return f"agent {action.agent!r} does not use chain {action.chain!r}"
        decimals = self._decimals.get((action.chain, action.asset))
        if decimals is None:
            return f"asset {action.asset!r} is not defined on chain {action.chain!r}"
        if action.amount.scaleb(decimals) != action.amount_base_units:
            return (
                f"amount {action.amount} {action.asset} is not {action.amount_base_units} base "
                f"units at {decimals} decimals; the transaction and the intent disagree"
            )
        return None

    def _usd(self, action: ProposedAction) -> Decimal | None:
        # The ledger's USD value: a price the policies would refuse values nothing (they
        # deny the action, and its reservation is released).
        valued = usd_value(self.prices, action, self.clock.now())
        return valued if isinstance(valued, Decimal) else None

    async def _ask_all(
        self, policies: Sequence[Policy], action: ProposedAction, ctx: PolicyContext
    ) -> tuple[list[Policy], Allow | Denied | Queued]:
        asked: list[Policy] = []
        queued: Queued | None = None
        for policy in policies:
            try:
                decision = await policy.evaluate(action, ctx)
            except Exception as exc:
                decision = _raised(policy, action, exc)
            if decision is not ALLOW:  # the shared ALLOW is the common answer: no checks
                decision = _checked(policy, decision)
                if isinstance(decision, Deny):
                    denied = Denied(
                        reason=decision.reason, policy=policy.name, cause=decision.cause
                    )
                    return asked, denied
                if isinstance(decision, NeedsApproval) and queued is None:
                    queued = self._queued(policy, decision)
            asked.append(policy)
        return asked, queued or ALLOW

    def _queued(self, policy: Policy, decision: NeedsApproval) -> Queued:
        expires_at = self.clock.now() + (decision.expires_in or DEFAULT_APPROVAL_TTL)
        return Queued(
            reason=decision.reason, policy=policy.name, approval_id=None, expires_at=expires_at
        )

    def _approval(self, action: ProposedAction, queued: Queued) -> Queued | ApprovalRequest:
        if self._approvals is None:
            return queued
        now = self.clock.now()
        approved = self._approvals.usable(action.fingerprint, now)
        if approved is not None:
            self._approvals.use(approved)
            return approved
        assert queued.expires_at is not None
        request = self._approvals.request(action, queued.reason, now, queued.expires_at - now)
        return queued.model_copy(
            update={"approval_id": request.id, "expires_at": request.expires_at}
        )

    async def _authorize(
        self, pending: _Pending, writes: WriteSet, approved: ApprovalRequest | None
    ) -> Outcome:
        action = pending.action
        grant = _Grant(action.agent, action.digest)
        try:
            await self._commit(writes, authorized=True, grant=grant)
        except (OverDeploymentLimit, StoreError) as exc:
            if approved is not None and self._approvals is not None:
                self._approvals.unuse(approved)
            if isinstance(exc, OverDeploymentLimit):  # judged in the store (cluster mode)
                denied = Denied(reason=str(exc), policy="SpendLimit")
                await self._decline(pending, writes, denied)
                return denied
            logger.error("could not persist policy state for %s: %s", action.summary(), exc)
            await self._decline(pending, None)
            return Denied(reason=f"policy state could not be persisted ({exc}); not authorized")
        # Minted with the group commit that made the evaluation's state durable, or
        # else (no store, nothing written) with this turn's other evaluations.
        authorization = grant.authorization or await self._batch_mint.mint(grant)
        # Validating is cheaper than model_construct here: pydantic-core accepts the
        # Authorization instance as is, where model_construct walks defaults in Python.
        return Authorized(
            authorization=authorization, approval_id=approved.id if approved else None
        )

    async def _decline(
        self, pending: _Pending, writes: WriteSet | None, outcome: Outcome | None = None
    ) -> None:
        """Undo what this evaluation reserved: its ledger entry and each policy's state.
        A denial for want of a usable price is shown to every policy of the agent, asked
        or not, as the failure it is (the breaker counts it)."""
        action = pending.action
        self.ledger.release(action.digest, persist=False, entry=pending.entry)
        for policy in pending.asked:
            await self._hook(policy, policy.on_declined(action, pending.ctx))
        if isinstance(outcome, Denied) and outcome.cause == "price":
            for policy in self._stacks[action.agent].policies:
                await self._hook(
                    policy, policy.on_price_failure(action, pending.ctx, outcome.reason)
                )
        if writes is not None:
            await self._commit(writes, authorized=False)

    async def _hook(self, policy: Policy, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            logger.exception("hook of policy %s raised; continuing with the others", policy.name)

    def _writes(self) -> WriteSet:
        # Without a store nothing is staged; an unentered-by-store set costs nothing.
        return self._store.writes() if self._store is not None else WriteSet()

    async def _commit(
        self, writes: WriteSet, *, authorized: bool, grant: _Grant | None = None
    ) -> None:
        if self._store is not None:
            await self._store.commit(writes, authorized=authorized, token=grant)

    def approvals_version(self) -> tuple[int, int]:
        """Changes whenever the approval requests may have changed: an operator decided
        one (the control version, polled at most every `control_poll`), or this engine
        requested one. Lets the runtime read pending approvals only when they moved."""
        self._poll_control()
        return self._control, self._approvals.requests_made if self._approvals else 0

    def _poll_control(self) -> None:
        if self._store is None or time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self._poll_every
        try:
            version = self._store.control_version()
        except StoreError as exc:
            logger.error("cannot poll policy control state: %s", exc)
            return
        if version != self._control:
            self._control = version
            for stack in self._stacks.values():
                stack.env.reload()


def _raised(policy: Policy, action: ProposedAction, exc: Exception) -> Deny:
    logger.error(
        "policy %s raised on %s; treating it as a deny",
        policy.name,
        action.summary(),
        exc_info=exc,
    )
    return Deny(reason=f"policy {policy.name} failed ({type(exc).__name__}: {exc})")


def _checked(policy: Policy, decision: object) -> Decision:
    if isinstance(decision, Allow | Deny | NeedsApproval):
        return decision
    return Deny(reason=f"policy {policy.name} returned {decision!r}, not a Decision")
