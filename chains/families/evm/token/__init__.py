"""The local USDC: a 6-decimal ERC-20 with EIP-2612 permit, compiled from the pinned
`@openzeppelin/contracts` sources; `devnet up` installs it on local EVM chains for every
asset declared `erc20: local` (see `build.py`)."""
