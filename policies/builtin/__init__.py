"""The built-in policies, registered by name in :mod:`policies.registry`."""
