"""Chainlink's MockV3Aggregator, compiled from the pinned `@chainlink/contracts` sources:
the AggregatorV3 feed `devnet up` installs on local EVM chains (see `build.py`)."""
