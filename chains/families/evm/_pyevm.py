"""In-process EVM (py-evm through web3's EthereumTesterProvider): the zero-install
fallback for `rpc: local` when anvil is not installed. Slow (tens of tx/s) but real."""

from __future__ import annotations

import copy
from typing import Any

from web3 import AsyncEthereumTesterProvider

from config.errors import ChainError


def pyevm_provider(chain_id: int) -> AsyncEthereumTesterProvider:
    """A fresh in-process chain that reports and enforces `chain_id`."""
    try:
        provider = AsyncEthereumTesterProvider()
    except ImportError as exc:
        raise ChainError(
            "the in-process EVM needs eth-tester with py-evm (pip extra of the project); "
            "install it, or install anvil (`npm ci`) and run `main.py devnet up FILE`"
        ) from exc
    # eth-tester hard-codes its chain id in two places: the py-evm chain class (used
    # to validate signatures) and the eth_chainId endpoint. Both must say `chain_id`.
    chain = provider.ethereum_tester.backend.chain
    type(chain).chain_id = chain_id
    endpoints: dict[str, dict[str, Any]] = copy.copy(provider.api_endpoints)
    endpoints["eth"] = {**endpoints["eth"], "chainId": lambda *_: chain_id}
    provider.api_endpoints = endpoints
    return provider


def funded_keys(provider: AsyncEthereumTesterProvider) -> list[bytes]:
    """Private keys of the accounts the in-process chain funds at genesis (test-only)."""
    return [key.to_bytes() for key in provider.ethereum_tester.backend.account_keys]
