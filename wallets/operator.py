"""The operator's wallets: open the keystore once, get every agent's wallet and identity.

Typical use by the runtime::

    wallets = open_wallets(deployment, engine, passphrase)
    payer = wallets.agent("payer")
    signer = payer.evm_signer(engine_mint.verifier)   # signs only with Authorizations
    audit = payer.jws_signer()                          # signs audit entries, not txs
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy.engine import Engine

from chains.families import family_of_chain
from config.errors import KeystoreError, WalletError
from config.models import Deployment
from config.store import agent_indices
from wallets._files import write_file
from wallets._secrets import Secret, _reveal
from wallets.authorization import AuthorizationVerifier
from wallets.credentials import REVOCATIONS_FILE, AgentAuthority, RevocationList, issue_credential
from wallets.did import agent_document, did_key, did_pkh
from wallets.evm import EvmSigner
from wallets.hd import (
    AgentKeys,
    derive_agent_keys,
    derive_operator_did_key,
    ed25519_public_key,
    evm_address,
    generate_mnemonic,
    seed_from_mnemonic,
)
from wallets.jws import JwsSigner
from wallets.keystore import DEFAULT_SCRYPT_N, Keystore
from wallets.passphrase import demo_passphrase_file, is_all_local, read_passphrase_file
from wallets.solana import SolanaSigner

log = logging.getLogger(__name__)

_PREIMAGE_DOMAIN = b"covenant/htlc-preimage/v1\x00"


class AgentWallet:
    """One agent's accounts, DID and signers. Exposes addresses and DIDs, never keys."""

    __slots__ = ("_did", "_evm_address", "_keys", "_name", "_solana_address")

    def __init__(self, name: str, keys: AgentKeys) -> None:
        self._name = name
        self._keys = keys
        self._evm_address = evm_address(keys.evm)
        self._solana_address = str(Pubkey(ed25519_public_key(keys.solana)))
        self._did = did_key(ed25519_public_key(keys.did))

    @property
    def name(self) -> str:
        """The agent's name."""
        return self._name

    @property
    def index(self) -> int:
        """The agent's stable HD index."""
        return self._keys.index

    @property
    def did(self) -> str:
        """The agent's did:key."""
        return self._did

    @property
    def evm_address(self) -> str:
        """The agent's EVM address (the same on every EVM chain)."""
        return self._evm_address

    @property
    def solana_address(self) -> str:
        """The agent's Solana address (base58)."""
        return self._solana_address

    def address(self, deployment: Deployment, chain: str) -> str:
        """The agent's address on the chain called `chain`."""
        return family_of_chain(deployment.chain(chain)).address(self)

    def did_document(
        self, deployment: Deployment, *, solana_genesis: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The DID document: the did:key plus a did:pkh for each of the agent's chains.

        `solana_genesis` maps a Solana chain name to its genesis hash (needed for a
        localnet whose genesis is known only at run time).
        """
        genesis = solana_genesis or {}
        accounts, names = [], {}
        for chain_name in deployment.agent(self._name).chains:
            chain = deployment.chain(chain_name)
            address = self.address(deployment, chain_name)
            pkh = did_pkh(chain, address, solana_genesis=genesis.get(chain_name))
            accounts.append((pkh, family_of_chain(chain).did_public_key(address)))
            names[pkh] = chain_name
        return agent_document(self._did, accounts, names=names)

    def evm_signer(self, verifier: AuthorizationVerifier) -> EvmSigner:
        """A signer for the EVM account that trusts the policy engine's `verifier`."""
        return EvmSigner(self._name, self._keys.evm, verifier)

    def solana_signer(self, verifier: AuthorizationVerifier) -> SolanaSigner:
        """A signer for the Solana account that trusts the policy engine's `verifier`."""
        return SolanaSigner(self._name, self._keys.solana, verifier)

    def jws_signer(self) -> JwsSigner:
        """The DID key's JWS signer, for audit entries and agent-to-agent messages."""
        return JwsSigner(self._keys.did)

    def derive_preimage(self, plan_id: str) -> bytes:
        """The 32-byte HTLC preimage of `plan_id`: HMAC-SHA256(agent secret, plan id).

        Deterministic, so a restarted daemon recovers it; never log or store it outside
        the journal.
        """
        if not plan_id:
            raise WalletError("plan_id must not be empty")
        message = _PREIMAGE_DOMAIN + plan_id.encode("utf-8")
        return hmac.new(_reveal(self._keys.preimage), message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"AgentWallet(name={self._name!r}, index={self.index}, did={self._did!r})"


class OperatorWallets:
    """The operator's DID key and every agent's wallet, from one decrypted seed."""

    __slots__ = ("_agents", "_data_dir", "_operator")

    def __init__(
        self, operator_key: Secret, agents: Mapping[str, AgentWallet], data_dir: Path
    ) -> None:
        self._operator = JwsSigner(operator_key)
        self._agents = dict(agents)
        self._data_dir = data_dir

    @property
    def did(self) -> str:
        """The operator's did:key (issuer of agent credentials)."""
        return self._operator.did

    @property
    def agents(self) -> Mapping[str, AgentWallet]:
        """Every agent's wallet by name."""
        return dict(self._agents)

    def agent(self, name: str) -> AgentWallet:
        """The wallet of agent `name`."""
        try:
            return self._agents[name]
        except KeyError:
            known = ", ".join(sorted(self._agents)) or "none"
            raise WalletError(
                f"no agent called {name!r} in this deployment (agents: {known})"
            ) from None

    def derive_preimage(self, agent: str, plan_id: str) -> bytes:
        """The HTLC preimage of `plan_id` for `agent` (see :meth:`AgentWallet.derive_preimage`)."""
        return self.agent(agent).derive_preimage(plan_id)

    def operator_signer(self) -> JwsSigner:
        """The operator's JWS signer (credentials, revocation list)."""
        return self._operator

    @property
    def revocations_path(self) -> Path:
        """Where the signed revocation list lives."""
        return self._data_dir / REVOCATIONS_FILE

    def revocations(self) -> RevocationList:
        """The verified revocation list."""
        return RevocationList.load(self.revocations_path, issuer=self.did)

    def revoke(self, credential_id: str) -> RevocationList:
        """Revoke `credential_id` (re-signs the revocation list)."""
        return RevocationList.revoke(self.revocations_path, credential_id, self._operator)

    def issue_credential(
        self,
        agent: str,
        authority: AgentAuthority,
        *,
        valid_for: timedelta,
        valid_from: datetime | None = None,
    ) -> str:
        """An AgentAuthorityCredential JWT for `agent`, valid from now for `valid_for`."""
        start = valid_from or datetime.now(UTC)
        return issue_credential(
            self._operator,
            self.agent(agent).did,
            authority,
            valid_from=start,
            valid_until=start + valid_for,
        )

    def __repr__(self) -> str:
        return f"OperatorWallets(did={self.did!r}, agents={sorted(self._agents)})"


def keystore_for(deployment: Deployment, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> Keystore:
    """The deployment's keystore (`operator.keystore`, default `<data_dir>/keystore`)."""
    directory = deployment.operator.keystore
    if directory is None:
        raise KeystoreError(
            "the deployment has no keystore path; load it with config.load_deployment"
        )
    return Keystore(directory, scrypt_n=scrypt_n)


def create_keystore(
    deployment: Deployment, mnemonic: str, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> str:
    """Encrypt the seed of `mnemonic` into the deployment's keystore; the operator DID."""
    seed = seed_from_mnemonic(mnemonic)
    operator_did = did_key(ed25519_public_key(derive_operator_did_key(seed)))
    keystore = keystore_for(deployment, scrypt_n=scrypt_n)
    keystore.create(seed, passphrase, metadata={"operator_did": operator_did})
    return operator_did


def open_wallets(
    deployment: Deployment, engine: Engine, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> OperatorWallets:
    """Decrypt the keystore and derive the operator DID key and every agent's keys."""
    seed = keystore_for(deployment, scrypt_n=scrypt_n).open(passphrase)
    operator_key = derive_operator_did_key(seed)
    operator_did = did_key(ed25519_public_key(operator_key))
    expected = deployment.operator.did
    if expected is not None and expected != operator_did:
        raise KeystoreError(
            f"the keystore belongs to operator {operator_did}, but the deployment names "
            f"operator.did {expected}; use the matching keystore or fix operator.did"
        )
    indices = agent_indices(engine, [agent.name for agent in deployment.agents])
    agents = {
        name: AgentWallet(name, derive_agent_keys(seed, index)) for name, index in indices.items()
    }
    log.debug("opened wallets of operator %s for agents %s", operator_did, sorted(agents))
    return OperatorWallets(operator_key, agents, Path(deployment.data_dir or "."))


def ensure_demo_keystore(deployment: Deployment, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> str:
    """The passphrase of a demo deployment's keystore, creating both if missing.

    Only for deployments whose chains are all `rpc: local`: it generates a mnemonic
    nobody sees and keeps the passphrase in a 0600 file in the data dir.
    """
    if not is_all_local(deployment):
        remote = [chain.name for chain in deployment.chains if chain.rpc != "local"]
        raise KeystoreError(
            f"refusing to create a demo keystore: chains {', '.join(remote)} are not local; "
            "run `keys init` and set COVENANT_PASSPHRASE"
        )
    passphrase_file = demo_passphrase_file(deployment)
    keystore = keystore_for(deployment, scrypt_n=scrypt_n)
    if keystore.exists():
        if not passphrase_file.exists():
            raise KeystoreError(
                f"keystore {keystore.seed_file} exists but {passphrase_file} does not; "
                "set COVENANT_PASSPHRASE or pass --passphrase-file"
            )
        return read_passphrase_file(passphrase_file)
    passphrase = secrets.token_urlsafe(32)
    write_file(passphrase_file, (passphrase + "\n").encode(), overwrite=False)
    create_keystore(deployment, generate_mnemonic(24), passphrase, scrypt_n=scrypt_n)
    log.warning(
        "created a demo keystore at %s; its passphrase is in %s (mode 0600). Demo only: "
        "use `keys init` for real funds",
        keystore.seed_file,
        passphrase_file,
    )
    return passphrase


def authority_from_config(deployment: Deployment, agent: str) -> AgentAuthority:
    """The authority an agent's YAML grants: its chains, assets and SpendLimit limits."""
    config = deployment.agent(agent)
    assets = config.assets or sorted(
        {asset.symbol for asset in deployment.assets if asset.chain in config.chains}
    )
    limits: dict[str, Any] = {}
    for policy in config.policies:
        limits.update(policy.get("SpendLimit") or {})
    return AgentAuthority(
        agent=agent,
        chains=tuple(config.chains),
        assets=tuple(assets),
        per_transaction=_amounts(limits.get("per_transaction")),
        per_day=_amounts(limits.get("per_day")),
        per_transaction_usd=_usd(limits.get("per_transaction_usd")),
        per_day_usd=_usd(limits.get("per_day_usd")),
    )


def _usd(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _amounts(value: Any) -> dict[str, Decimal]:
    if not isinstance(value, dict):
        return {}
    return {str(symbol): Decimal(str(amount)) for symbol, amount in value.items()}
