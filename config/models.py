"""Pydantic models of a whole deployment: operator, chains, assets, address book,
planners, agents and store.

Every model is frozen and forbids unknown keys, so a typo in YAML is an error rather
than a silently ignored setting. Cross-references (an agent naming a chain, a planner or
a counterparty) are checked in :mod:`config._references` once the whole file is parsed.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, Tag, field_validator, model_validator

from config.chain_model import ChainModel, Model, key_tag
from config.margins import Margins
from config.prices import AssetPrice
from config.types import (
    CronExpression,
    DidKey,
    Duration,
    EvmAddress,
    Name,
    PositiveAmount,
    SolanaAddress,
)


class Operator(Model):
    """Who runs the deployment. Secrets never live here: the keystore holds them."""

    name: Name
    keystore: str | None = Field(
        default=None,
        description="Directory of encrypted keystore files; default <data_dir>/keystore.",
    )
    did: str | None = Field(
        default=None,
        pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$",
        description="The operator's did:key, printed by `keys init`; credentials from any "
        "other issuer are rejected.",
    )


def _chain_union() -> Any:
    """The discriminated union of every registered family's chain model."""
    from chains.families import FAMILIES

    members = tuple(family.config_model for family in FAMILIES)
    return Annotated[Union[members], Field(discriminator="family")]  # noqa: UP007


if TYPE_CHECKING:
    Chain = ChainModel
else:
    Chain = _chain_union()


LOCAL_TOKEN = "local"  # noqa: S105 - the word that names a local token, not a secret


class Asset(Model):
    """A coin or token on one chain. Exactly one of native, erc20, spl_mint is set."""

    symbol: str = Field(pattern=r"^[A-Z][A-Z0-9.]{0,15}$")
    chain: Name
    decimals: int = Field(ge=0, le=36)
    native: bool = False
    erc20: EvmAddress | None = Field(
        default=None,
        description="The token contract; `local` on a chain with `rpc: local` names the "
        "6-decimal local USDC `devnet up` installs and funds the agents with.",
    )
    spl_mint: SolanaAddress | None = Field(
        default=None,
        description="The SPL mint; `local` on a chain with `rpc: local` names the "
        "6-decimal local mint `devnet up` installs and funds the agents with.",
    )
    usd_price: PositiveAmount | None = Field(
        default=None,
        description="Fixed USD price used by USD-normalised limits; the same as a `prices:` "
        "entry with one `fixed` source. An asset priced in `prices:` must not set it.",
    )

    @property
    def token(self) -> str | None:
        """The token contract or mint; None for the native coin."""
        return self.erc20 or self.spl_mint

    @field_validator("erc20", "spl_mint", mode="before")
    @classmethod
    def _local_needs_local_chain(cls, value: object) -> object:
        # A deployment resolves `local` on its local chains before assets are validated
        # (Deployment._local_tokens); one left here is on a chain that is not local.
        if value == LOCAL_TOKEN:
            raise ValueError(
                "`local` names the token `devnet up` installs, so it needs a chain with "
                "`rpc: local`; give the token's address on this network"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Asset:
        kinds = [self.native, self.erc20 is not None, self.spl_mint is not None]
        if sum(kinds) != 1:
            raise ValueError(
                f"asset {self.symbol} must set exactly one of native: true, erc20, spl_mint"
            )
        return self


class Counterparty(Model):
    """A named recipient: fixed addresses per chain, another agent of this deployment, or
    another operator's agent (its DID and Agent Card URL: its addresses come only from
    the card, verified as signed by that DID)."""

    name: Name
    addresses: dict[Name, str] = Field(default_factory=dict)
    agent: Name | None = None
    did: str | None = Field(
        default=None,
        pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$",
        description="Another operator's agent: its did:key (the card must be signed by it).",
    )
    card: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="That agent's A2A URL (or its Agent Card's URL), with `did`.",
    )
    trusted_operators: list[DidKey] = Field(
        default_factory=list,
        description="Operator DIDs trusted to vouch for this counterparty, besides "
        "`a2a.trusted_operators`: its card's authority credential must come from one.",
    )
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _addresses_or_agent(self) -> Counterparty:
        kinds = [bool(self.addresses), self.agent is not None, self.card is not None]
        if sum(kinds) != 1:
            raise ValueError(
                f"counterparty {self.name} must set exactly one of addresses (per chain), "
                "agent (of this deployment), or card with did (another operator's agent)"
            )
        if (self.card is None) != (self.did is None):
            raise ValueError(f"counterparty {self.name}: card and did go together")
        if self.trusted_operators and self.card is None:
            raise ValueError(
                f"counterparty {self.name}: trusted_operators is for another operator's "
                "agent (card and did)"
            )
        return self

    @property
    def remote(self) -> bool:
        """Another operator's agent, known by its DID and card."""
        return self.card is not None


class OllamaPlanner(Model):
    """A model served by Ollama, called through LangChain's ChatOllama."""

    name: Name
    kind: Literal["ollama"]
    base_url: str = "http://127.0.0.1:11434"
    model: str = Field(min_length=1)
    temperature: float = Field(default=0.2, ge=0, le=2)
    samples: int = Field(default=3, ge=1, le=16)
    timeout: Duration = Field(
        default=Decimal(120),
        description="Longest silence on one request (headers or the next line), not its total.",
    )
    num_predict: int = Field(
        default=512,
        ge=16,
        le=8192,
        description="Most tokens per reply; Ollama's own default is no limit.",
    )
    keep_alive: Duration | None = Field(
        default=None,
        description=(
            "How long Ollama keeps the model loaded after each request. Default: two of "
            "the agent's tick intervals plus a minute, at least 5 minutes (Ollama's own "
            "default, which unloads the model between ticks further apart); 1 hour for "
            "cron schedules."
        ),
    )
    parallel: int = Field(
        default=1,
        ge=1,
        le=16,
        description=(
            "Requests in flight at once. Ollama runs OLLAMA_NUM_PARALLEL (default 1) and "
            "queues the rest, and a queued request spends its timeout waiting."
        ),
    )


class EmbeddedPlanner(Model):
    """llama.cpp in-process with a GGUF model (default: Gemma 3 270M from PyPI)."""

    name: Name
    kind: Literal["embedded"]
    model_path: str | None = Field(
        default=None, description="GGUF file; default is the gemma3-270m package's model."
    )
    temperature: float = Field(default=0.2, ge=0, le=2)
    samples: int = Field(default=2, ge=1, le=16)
    max_tokens: int = Field(default=256, ge=16, le=4096)


class ScriptedPlanner(Model):
    """Plans read from YAML, in order, one per tick; for tests and rule-based agents."""

    name: Name
    kind: Literal["scripted"]
    plans: list[dict[str, Any]] = Field(default_factory=list)
    repeat: bool = False


Planner = Annotated[OllamaPlanner | EmbeddedPlanner | ScriptedPlanner, Field(discriminator="kind")]


class IntervalSchedule(Model):
    """Wake every `every` (e.g. '30s', '5m'), with up to `jitter` random delay."""

    every: Duration
    jitter: Duration | None = None


class CronSchedule(Model):
    """Wake on a crontab expression."""

    cron: CronExpression
    jitter: Duration | None = None


def _one_policy(item: dict[str, Any]) -> dict[str, Any]:
    if len(item) != 1:
        raise ValueError(
            "each policy is a one-key mapping like `- SpendLimit: {...}`, "
            f"got keys {sorted(item)}"
        )
    return item


PolicySpec = Annotated[dict[str, dict[str, Any] | None], AfterValidator(_one_policy)]
"""One policy: `{Name: {params}}`, by registry name or `package.module:Class`."""


def _one_source(item: dict[str, Any]) -> dict[str, Any]:
    if len(item) != 1:
        raise ValueError(
            "each source is a one-key mapping like `- TaskFile: {path: invoices.yaml}`, "
            f"got keys {sorted(item)}"
        )
    return item


SourceSpec = Annotated[dict[str, dict[str, Any] | None], AfterValidator(_one_source)]
"""One observation source: `{Name: {params}}` by registry name (agents/sources)."""


Schedule = Annotated[
    Annotated[IntervalSchedule, Tag("every")] | Annotated[CronSchedule, Tag("cron")],
    key_tag("every", "cron"),
]


class AgentConfig(Model):
    """One long-running agent."""

    name: Name
    schedule: Schedule
    mandate: str = Field(min_length=1, max_length=4000)
    planner: Name
    chains: list[Name] = Field(min_length=1)
    assets: list[str] = Field(default_factory=list, description="Symbols; default all.")
    counterparties: list[Name] = Field(default_factory=list, description="Default: all.")
    actions: list[Name] = Field(
        default_factory=list,
        description="Action kinds the agent may plan (transfer, swap, pay_many, "
        "pay_invoice, accept_offer); default all. A narrower list is a smaller schema and "
        "prompt for the model, and a limit the model cannot cross.",
    )
    policies: list[PolicySpec] = Field(default_factory=list)
    sources: list[SourceSpec] = Field(
        default_factory=list, description="Where the agent finds tasks (invoices, work)."
    )
    credential: str | None = Field(
        default=None, description="Path of the agent's authority credential (JWT)."
    )


class Store(Model):
    """Where state lives: SQLite by default, PostgreSQL by URL."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (postgresql+psycopg://...); default SQLite in data_dir.",
    )

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(f"store url {value!r} must start with sqlite:// or postgresql")
        return value


_LOOPBACK_HOSTS = ("localhost", "::1")


def _listen_parts(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets, `[::1]:8787`) as host and port."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen {listen!r} must be host:port, e.g. 127.0.0.1:8787")
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in _LOOPBACK_HOSTS


class A2aConfig(Model):
    """The agent-to-agent endpoint served by `run`: one signed A2A Agent Card per hosted
    agent and JSON-RPC messages to it. Off unless this section is present; loopback
    unless `allow_non_loopback` says other operators' daemons should reach it."""

    listen: str = Field(
        default="127.0.0.1:8788", description="host:port to serve on; loopback by default."
    )
    public_url: str | None = Field(
        default=None,
        description="The base URL other daemons reach this one at, written into the cards "
        "(e.g. behind a TLS proxy: https://agents.example.com); default http://<listen>.",
    )
    allow_non_loopback: bool = Field(
        default=False,
        description="Listen on a non-loopback address. Every message is signed, but the "
        "endpoint is then open to the network: put a TLS proxy in front.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=1024 * 1024, description="Largest request body; 413 above."
    )
    requests_per_minute: int = Field(
        default=120,
        ge=1,
        description="Requests per client address per minute; 429 above. Behind a proxy every "
        "client has the proxy's address: set the proxy's own per-client limit instead.",
    )
    trusted_operators: list[DidKey] = Field(
        default_factory=list,
        description="Operator DIDs whose agent-authority credentials this deployment "
        "accepts from other operators' agents; a counterparty vouched for by no trusted "
        "operator gets nothing locked to it.",
    )
    revocation_max_age: Duration = Field(
        default=Decimal(300),
        description="How long a fetched revocation list is trusted before it is fetched "
        "again, e.g. '5m'; one that cannot be fetched refuses its issuer's credentials.",
    )
    message_lifetime: Duration = Field(
        default=Decimal(300),
        description="How long a signed message this daemon sends holds, e.g. '5m'.",
    )

    @model_validator(mode="after")
    def _safe_listen(self) -> A2aConfig:
        host, _port = _listen_parts(self.listen)
        if not self.allow_non_loopback and not _is_loopback(host):
            raise ValueError(
                f"a2a listen {self.listen!r} is not a loopback address: listen on "
                "127.0.0.1, or set allow_non_loopback: true behind a TLS proxy"
            )
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ValueError(f"a2a public_url {self.public_url!r} must be an http(s):// URL")
        return self

    @property
    def host(self) -> str:
        """The host part of `listen`."""
        return _listen_parts(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of `listen`."""
        return _listen_parts(self.listen)[1]

    @property
    def base_url(self) -> str:
        """`public_url`, or the listen address over plain HTTP."""
        return (self.public_url or f"http://{self.listen}").rstrip("/")


class ConsoleConfig(Model):
    """The operator's console (web pages, approvals, `/metrics`) served by `run`. Off
    unless this section is present. It listens on loopback unless TLS is configured or
    `allow_plaintext_non_loopback` says, loudly, that plain HTTP on a network is wanted."""

    listen: str = Field(
        default="127.0.0.1:8787",
        description="host:port to serve on; loopback by default.",
    )
    tls_cert: str | None = Field(default=None, description="PEM certificate file (HTTPS).")
    tls_key: str | None = Field(default=None, description="PEM private key file of tls_cert.")
    allow_plaintext_non_loopback: bool = Field(
        default=False,
        description="Serve plain HTTP on a non-loopback address: anyone on the path sees "
        "the session cookie. Only behind a TLS-terminating proxy you control.",
    )
    session_lifetime: Duration = Field(
        default=Decimal(8 * 3600), description="How long a login lasts, e.g. '8h'."
    )
    public_names: list[str] = Field(
        default_factory=list,
        description="Host names the console is reached by besides its listen host (and "
        "localhost on loopback), e.g. the TLS proxy's name; any other Host header is "
        "refused with 400, so a DNS-rebound page cannot talk to it.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve /metrics without a login (for a scraper on this host). Off: "
        "/metrics needs a console session like every page.",
    )

    @model_validator(mode="after")
    def _safe_listen(self) -> ConsoleConfig:
        host, _port = _listen_parts(self.listen)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("console tls_cert and tls_key go together: set both or neither")
        plaintext = self.tls_cert is None and not self.allow_plaintext_non_loopback
        if plaintext and not _is_loopback(host):
            raise ValueError(
                f"console listen {self.listen!r} is not a loopback address and no TLS is "
                "configured: set tls_cert and tls_key, listen on 127.0.0.1, or set "
                "allow_plaintext_non_loopback: true if a TLS proxy you control is in front"
            )
        return self

    @property
    def host(self) -> str:
        """The host part of `listen`."""
        return _listen_parts(self.listen)[0]

    @property
    def allowed_hosts(self) -> list[str]:
        """The Host header values (without port) the console answers."""
        names = [self.host, *self.public_names]
        if _is_loopback(self.host):
            names += ["localhost", "127.0.0.1", "::1"]
        # An IPv6 literal arrives in brackets (`Host: [::1]:8787`).
        return sorted({f"[{n}]" if ":" in n else n for n in (n.lower() for n in names)})

    @property
    def port(self) -> int:
        """The port part of `listen`."""
        return _listen_parts(self.listen)[1]


WebhookEvent = Literal[
    "approval_waiting",
    "approval_expiring",
    "breaker_opened",
    "plan_refunded",
    "plan_failed",
    "plan_stuck",
    "rpc_unreachable",
    "audit_broken",
]


class Webhook(Model):
    """An alert receiver: each chosen event is POSTed once as JSON, signed with
    HMAC-SHA256 in `X-Covenant-Signature`, from a durable outbox (retried with backoff,
    delivered once across restarts)."""

    url: str = Field(pattern=r"^https?://", description="Where events are POSTed.")
    events: list[WebhookEvent] = Field(min_length=1)
    secret_env: str = Field(
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the HMAC secret (never the secret itself).",
    )
    expiring_within: Duration = Field(
        default=Decimal(600),
        description="approval_expiring fires when a request has less than this left.",
    )


class ClusterConfig(Model):
    """Cluster mode: any number of daemons started with this file and one PostgreSQL
    store share the deployment. Each agent is ticked by one daemon at a time, through a
    lease in the store (owner, epoch, expiry judged by the database clock) that every
    state write of the agent checks in its own transaction. Off unless present."""

    lease_ttl: Duration = Field(
        default=Decimal(15),
        description="Seconds a lease lasts unless renewed (renewed every third of it). "
        "A daemon that stops for longer loses its agents to the others; take-over takes "
        "about this long, so keep it far below the HTLC margins (`atomic:`).",
    )
    daemon_id: str | None = Field(
        default=None,
        max_length=120,
        description="This daemon's name in the lease table; default <host>-<pid>. Two "
        "live daemons must never share one.",
    )

    @field_validator("lease_ttl")
    @classmethod
    def _sane_ttl(cls, value: Decimal) -> Decimal:
        # Below a second the renewals (every third) would compete with the ticks; above
        # an hour a dead daemon's agents would stand still for that long.
        if not Decimal(1) <= value <= Decimal(3600):
            raise ValueError(f"cluster lease_ttl {value}s must be between 1s and 1h")
        return value


class Deployment(Model):
    """A whole deployment file."""

    version: Literal[1] = 1
    name: Name
    data_dir: str | None = Field(
        default=None, description="State directory; default .covenant/<name> beside the file."
    )
    operator: Operator
    chains: list[Chain] = Field(min_length=1)
    assets: list[Asset] = Field(default_factory=list)
    prices: list[AssetPrice] = Field(
        default_factory=list,
        description="Where each asset's USD price comes from (Chainlink, Pyth, fixed).",
    )
    address_book: list[Counterparty] = Field(default_factory=list)
    planners: list[Planner] = Field(min_length=1)
    agents: list[AgentConfig] = Field(default_factory=list)
    store: Store = Store()
    atomic: Margins = Field(
        default_factory=Margins,
        description="Timelock margins of all-or-nothing actions (HTLC deadlines).",
    )
    console: ConsoleConfig | None = Field(
        default=None, description="The operator's web console and metrics; off if absent."
    )
    a2a: A2aConfig | None = Field(
        default=None,
        description="The agent-to-agent endpoint (signed Agent Cards, A2A JSON-RPC); off "
        "if absent.",
    )
    webhooks: list[Webhook] = Field(
        default_factory=list, description="Alert receivers (signed JSON POSTs)."
    )
    cluster: ClusterConfig | None = Field(
        default=None,
        description="Several daemons sharing this deployment on a PostgreSQL store; "
        "off (one daemon) if absent.",
    )
    log_format: Literal["text", "jsonl"] = Field(
        default="text",
        description="Format of <data_dir>/covenant.log: text lines, or JSON lines with the "
        "agent and plan id on every record.",
    )

    @model_validator(mode="before")
    @classmethod
    def _local_tokens(cls, data: Any) -> Any:
        """Resolve `erc20: local` / `spl_mint: local` of assets on local chains to where
        the chain's family installs its local token (see config._references)."""
        from config._references import resolve_local_tokens

        return resolve_local_tokens(data)

    @model_validator(mode="after")
    def _references(self) -> Deployment:
        from config._references import check_references

        check_references(self)
        return self

    @model_validator(mode="after")
    def _cluster_store(self) -> Deployment:
        if self.cluster is None:
            return self
        url = self.store.url
        if url is None or not url.startswith("postgresql"):
            where = f"store url {url!r}" if url else "the default SQLite file in data_dir"
            raise ValueError(
                f"cluster mode needs a PostgreSQL store, and this deployment's store is "
                f"{where}: a SQLite file cannot be shared by daemons on several machines "
                "(one daemon per SQLite store). Set `store: {url: postgresql+psycopg://...}` "
                "or remove `cluster:` to run one daemon"
            )
        handover = self.cluster.lease_ttl * 4 / 3
        escrows = any(getattr(chain, "htlc", None) is not None for chain in self.chains)
        if escrows and handover > self.atomic.watcher_interval:
            # The HTLC margins budget one watcher interval for noticing anything; a dead
            # daemon's plans wait up to a TTL plus a renewal period for their new owner.
            raise ValueError(
                f"cluster lease_ttl {self.cluster.lease_ttl}s hands a dead daemon's agents "
                f"over within about {handover:.0f}s, more than atomic.watcher_interval "
                f"({self.atomic.watcher_interval}s) that the HTLC margins allow for noticing "
                "anything; lower lease_ttl or raise atomic.watcher_interval"
            )
        return self

    def chain(self, name: str) -> ChainModel:
        """The chain called `name`; KeyError if there is none."""
        for chain in self.chains:
            if chain.name == name:
                return chain
        raise KeyError(name)

    def agent(self, name: str) -> AgentConfig:
        """The agent called `name`; KeyError if there is none."""
        return self._agents_by_name[name]

    @cached_property
    def _agents_by_name(self) -> dict[str, AgentConfig]:
        # A daemon looks agents up on every tick; a thousand agents make a scan costly.
        return {agent.name: agent for agent in self.agents}
