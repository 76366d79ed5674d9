"""The policy layer: every action an agent plans passes here before anything is signed.

:class:`PolicyEngine` runs an agent's ordered policies and is the only thing that can mint an
:class:`~wallets.authorization.Authorization`. Built-in policies are named in YAML by
registry name; user policies by `package.module:Class` (see docs/writing-policies.md).
"""

from policies.actions import ConfidenceEvidence, ProposedAction
from policies.base import (
    ALLOW,
    Allow,
    AuthorityClaims,
    Clock,
    Decision,
    Deny,
    NeedsApproval,
    NoParams,
    Policy,
    PolicyContext,
    PolicyEnv,
    PriceSource,
    SimulationResult,
    StaticPrices,
    SystemClock,
)
from policies.engine import Authorized, Denied, Outcome, PolicyEngine, Queued
from policies.registry import (
    BUILTINS,
    PolicyConfigError,
    build_policies,
    resolve_policy,
    validate_deployment_policies,
)

__all__ = [
    "ALLOW",
    "BUILTINS",
    "Allow",
    "AuthorityClaims",
    "Authorized",
    "Clock",
    "ConfidenceEvidence",
    "Decision",
    "Denied",
    "Deny",
    "NeedsApproval",
    "NoParams",
    "Outcome",
    "Policy",
    "PolicyConfigError",
    "PolicyContext",
    "PolicyEngine",
    "PolicyEnv",
    "PriceSource",
    "ProposedAction",
    "Queued",
    "SimulationResult",
    "StaticPrices",
    "SystemClock",
    "build_policies",
    "resolve_policy",
    "validate_deployment_policies",
]
