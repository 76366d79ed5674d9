"""Cross-field checks of a deployment: unique names and resolvable references.

Each problem is raised as :class:`ReferenceProblem`, which carries the path of the
offending field so the YAML loader can point at the exact line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chains.families import FAMILIES, family

if TYPE_CHECKING:
    from config.chain_model import ChainModel
    from config.models import Deployment

Path = tuple[str | int, ...]


class ReferenceProblem(ValueError):
    """A deployment-level inconsistency at `path` (e.g. an unknown planner name)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or the valid choices when nothing is close."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid names: {', '.join(options)}" if options else "; none are defined"


def _unknown(path: Path, kind: str, name: str, known: Iterable[str]) -> ReferenceProblem:
    return ReferenceProblem(path, f"unknown {kind} {name!r}{did_you_mean(name, known)}")


def _check_unique(section: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ReferenceProblem(
                (section, index, "name"), f"duplicate {section} name {name!r}; names must be unique"
            )
        seen.add(name)


def check_references(deployment: Deployment) -> None:
    """Raise :class:`ReferenceProblem` for the first inconsistency found."""
    for section in ("chains", "planners", "agents", "address_book"):
        _check_unique(section, [item.name for item in getattr(deployment, section)])
    _check_chain_ids(deployment)
    _check_assets(deployment)
    _check_prices(deployment)
    _check_address_book(deployment)
    _check_agents(deployment)
    _check_margins(deployment)


def _check_chain_ids(deployment: Deployment) -> None:
    """Two chains of one family must not be the same network (each family says when)."""
    chains = deployment.chains
    for index, chain in enumerate(chains):
        for other in chains[:index]:
            if other.family != chain.family:
                continue
            clash = family(chain.family).identity_clash(chain, other)
            if clash is not None:
                field, message = clash
                raise ReferenceProblem(("chains", index, field), message)


_FAMILY_NAMES = {each.name for each in FAMILIES}


def resolve_local_tokens(data: Any) -> Any:
    """`data` (a deployment as parsed) with each asset's token field `local`, on a chain
    with `rpc: local`, replaced by the family's local token address of that symbol.
    Anything malformed is left for validation to report."""
    if not isinstance(data, dict) or not isinstance(data.get("assets"), list):
        return data
    chains = {
        chain.get("name"): chain for chain in data.get("chains") or [] if isinstance(chain, dict)
    }
    assets = []
    for asset in data["assets"]:
        chain = chains.get(asset.get("chain")) if isinstance(asset, dict) else None
        if chain is None or chain.get("rpc") != "local" or chain.get("family") not in _FAMILY_NAMES:
            assets.append(asset)
            continue
        token_field = family(chain["family"]).asset_field
        if asset.get(token_field) != "local":
            assets.append(asset)
            continue
        local = family(chain["family"]).local_token(str(asset.get("symbol")))
        assets.append({**asset, token_field: local})
    return {**data, "assets": assets}


def _check_assets(deployment: Deployment) -> None:
    families = {chain.name: chain.family for chain in deployment.chains}
    seen: set[tuple[str, str]] = set()
    for index, asset in enumerate(deployment.assets):
        if asset.chain not in families:
            raise _unknown(("assets", index, "chain"), "chain", asset.chain, families)
        for other in FAMILIES:
            token = other.asset_field
            if other.name != families[asset.chain] and getattr(asset, token) is not None:
                raise ReferenceProblem(("assets", index, token), other.misplaced_token(asset.chain))
        _check_local_token(deployment, index)
        if (asset.symbol, asset.chain) in seen:
            raise ReferenceProblem(
                ("assets", index, "symbol"),
                f"asset {asset.symbol} is defined twice on chain {asset.chain!r}",
            )
        seen.add((asset.symbol, asset.chain))


def _check_local_token(deployment: Deployment, index: int) -> None:
    asset = deployment.assets[index]
    chain_family = family(deployment.chain(asset.chain).family)
    token = getattr(asset, chain_family.asset_field)
    local = token is not None and token == chain_family.local_token(asset.symbol)
    if local and asset.decimals != chain_family.local_token_decimals:
        raise ReferenceProblem(
            ("assets", index, "decimals"),
            f"the local token {asset.symbol} has {chain_family.local_token_decimals} "
            f"decimals, not {asset.decimals}",
        )


def _check_prices(deployment: Deployment) -> None:
    """Each symbol priced once, by assets that exist, from feeds on chains whose family
    reads that kind of feed; `local` feeds only on local chains."""
    symbols = {asset.symbol for asset in deployment.assets}
    chains = {chain.name: chain for chain in deployment.chains}
    seen: set[str] = set()
    for index, entry in enumerate(deployment.prices):
        if entry.symbol not in symbols:
            raise _unknown(("prices", index, "symbol"), "asset symbol", entry.symbol, symbols)
        if entry.symbol in seen:
            raise ReferenceProblem(
                ("prices", index, "symbol"), f"prices of {entry.symbol} are given twice"
            )
        seen.add(entry.symbol)
        _check_fixed_twice(deployment, index, entry.symbol)
        for position, source in enumerate(entry.sources):
            _check_feed_chain(chains, ("prices", index, "sources", position), source)


def _check_fixed_twice(deployment: Deployment, index: int, symbol: str) -> None:
    for asset in deployment.assets:
        if asset.symbol == symbol and asset.usd_price is not None:
            raise ReferenceProblem(
                ("prices", index, "symbol"),
                f"asset {symbol} on {asset.chain} also sets usd_price; drop usd_price (or "
                "add it here as a source `{kind: fixed, usd: ...}`)",
            )


def _check_feed_chain(chains: dict[str, ChainModel], path: Path, source: object) -> None:
    chain_name = getattr(source, "chain", None)
    if chain_name is None:
        return  # a fixed price reads no chain
    kind = getattr(source, "kind", "")
    if chain_name not in chains:
        raise _unknown((*path, "chain"), "chain", chain_name, chains)
    chain = chains[chain_name]
    readers = [f.label for f in FAMILIES if f.price_kind == kind]
    if family(chain.family).price_kind != kind:
        raise ReferenceProblem(
            (*path, "chain"),
            f"a {kind} feed is read on {' or '.join(readers)} chains; chain {chain_name!r} "
            "is not one",
        )
    address_field = "address" if hasattr(source, "address") else "account"
    if getattr(source, address_field) == "local" and chain.rpc != "local":
        raise ReferenceProblem(
            (*path, address_field),
            f"`{address_field}: local` needs `rpc: local` (chain {chain_name!r} uses "
            f"{chain.rpc}); give the feed's address on that network",
        )


def _check_address_book(deployment: Deployment) -> None:
    families = {chain.name: chain.family for chain in deployment.chains}
    agents = [agent.name for agent in deployment.agents]
    for index, party in enumerate(deployment.address_book):
        if party.agent is not None and party.agent not in agents:
            raise _unknown(("address_book", index, "agent"), "agent", party.agent, agents)
        for chain, address in party.addresses.items():
            path: Path = ("address_book", index, "addresses", chain)
            if chain not in families:
                raise _unknown(path, "chain", chain, families)
            try:
                family(families[chain]).validate_address(address)
            except ValidationError as exc:
                message = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise ReferenceProblem(path, message) from None


def _check_agents(deployment: Deployment) -> None:
    planners = [planner.name for planner in deployment.planners]
    chains = [chain.name for chain in deployment.chains]
    parties = [party.name for party in deployment.address_book]
    for index, agent in enumerate(deployment.agents):
        base: Path = ("agents", index)
        if agent.planner not in planners:
            raise _unknown((*base, "planner"), "planner", agent.planner, planners)
        for position, chain in enumerate(agent.chains):
            if chain not in chains:
                raise _unknown((*base, "chains", position), "chain", chain, chains)
        symbols = {a.symbol for a in deployment.assets if a.chain in agent.chains}
        for position, symbol in enumerate(agent.assets):
            if symbol not in symbols:
                raise _unknown((*base, "assets", position), "asset", symbol, symbols)
        for position, party in enumerate(agent.counterparties):
            if party not in parties:
                raise _unknown((*base, "counterparties", position), "counterparty", party, parties)


def _check_margins(deployment: Deployment) -> None:
    chains = [chain.name for chain in deployment.chains]
    for name in deployment.atomic.chains:
        if name not in chains:
            raise _unknown(("atomic", "chains", name), "chain", name, chains)
