"""Wiring of the A2A endpoint into a run: a signed card and an inbox per hosted agent,
served for the length of the run when the deployment configures `a2a:`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from agents.a2a.card import build_card, sign_card
from agents.a2a.messages import Inbox, SignedMessage
from agents.a2a.server import HostedAgent, serving
from agents.a2a.store import MessageStore
from agents.app.runtime import Runtime
from config.models import A2aConfig, Deployment
from wallets.credentials import signed_list
from wallets.operator import OperatorWallets


def hosted_agents(
    deployment: Deployment,
    wallets: OperatorWallets,
    config: A2aConfig,
    store: MessageStore | None = None,
    on_message: Callable[[SignedMessage], None] | None = None,
) -> dict[str, HostedAgent]:
    """Every agent of `deployment` with its card, signed by its own DID key, and its
    inbox (durable in `store` when given), which takes messages only from the
    deployment's remote counterparties; `on_message` hears of each accepted one."""
    senders = frozenset(p.did for p in deployment.address_book if p.did is not None)
    hosted = {}
    for agent in deployment.agents:
        wallet = wallets.agent(agent.name)
        accounts = wallet.did_document(deployment)["alsoKnownAs"]
        card = build_card(
            deployment,
            agent.name,
            did=wallet.did,
            accounts=accounts,
            operator_did=wallets.did,
            public_url=config.base_url,
            credential=_credential(agent.credential),
        )
        hosted[agent.name] = HostedAgent(
            agent.name,
            sign_card(card, wallet.jws_signer()),
            Inbox(wallet.did, agent.name, store, senders=senders),
            on_message=on_message,
        )
    return hosted


@asynccontextmanager
async def a2a_running(runtime: Runtime) -> AsyncIterator[str | None]:
    """Serve the A2A endpoint (if configured) while the block runs; yields its base URL
    or None."""
    config = runtime.deployment.a2a
    if config is None:
        yield None
        return
    store = MessageStore(runtime.store)
    wallets = runtime.wallets
    desk = runtime.desk
    wake = (lambda _message: desk.wake()) if desk is not None else None
    hosted = hosted_agents(runtime.deployment, wallets, config, store, wake)
    async with serving(hosted, config, lambda: revocation_list(wallets)) as url:
        yield url


def revocation_list(wallets: OperatorWallets) -> str:
    """The operator's signed revocation list as others fetch it (an empty one, signed
    now, if nothing was ever revoked)."""
    path = wallets.revocations_path
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    return signed_list(wallets.operator_signer(), ())


def _credential(path: str | None) -> str | None:
    # The agent's credential was verified when the runtime started (verified_claims).
    return Path(path).read_text(encoding="utf-8").strip() if path else None
