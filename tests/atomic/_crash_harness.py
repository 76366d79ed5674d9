"""Crash-anywhere harness: SIGKILL the crash-test daemon at any instant, restart it until
its plans finish, then judge the result from the chains alone.

Kills come in two sorts. *Write kills* stop the daemon just before or just after its
n-th durable store commit (``COVENANT_CRASH_AT_WRITE``, see :mod:`tests.atomic._daemon`):
every nonce reservation, journal entry, plan step and state change is an instant at
which a crash leaves a different store behind. *Random kills* stop it after a delay drawn
from a seeded RNG, from the zygote parent (:mod:`tests.atomic._zygote`), wherever it is.

Judging (:func:`judge`, with :mod:`tests.atomic._crash_judge`) reads the chains: each
escrow's state, every transaction an account paid for, anvil's nonces and txpool. Only
the plan ids and escrow locators come from the daemon's store; what happened to them
comes from the chains.
Used by tests/atomic/test_crash_anywhere.py and scripts/crash_anywhere.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_account import Account
from solders.keypair import Keypair
from sqlalchemy.exc import OperationalError

from chains.atomic.base import Leg
from chains.atomic.store import PlanRecord, PlanStore
from chains.families.solana import htlc_client as program
from tests.atomic._crash_judge import ChainView, plan_outcome, reconcile, rpc, swap_losses
from tests.atomic._env import EvmNode, SolanaNode, make_wallet
from wallets.hd import generate_mnemonic

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = Path(__file__).resolve().parent / "_zygote.py"
ETH = 10**18
SOL = 10**9
SWAPS = {  # kind -> (what the maker gives, what it takes)
    "swap-sol-arb": ({"chain": "sol", "amount": SOL // 20}, {"chain": "arb", "amount": ETH // 200}),
    "swap-arb-sol": ({"chain": "arb", "amount": ETH // 200}, {"chain": "sol", "amount": SOL // 20}),
    "swap-arb-base": (
        {"chain": "arb", "amount": ETH // 200},
        {"chain": "base", "amount": ETH // 300},
    ),
}
KINDS = (*SWAPS, "pay", "refund")
"""Scenario kinds: three swaps between the daemon's two agents, a plan of payments on
all three chains that ends claimed, and one whose unaffordable base leg makes it refund."""
UNIT = {"arb": "wei", "base": "wei", "sol": "lamports"}
RESTARTS = 4
"""Clean runs after the kills before a scenario counts as left open."""


@dataclass
class Scenario:
    """One daemon's store, agents and plans on the shared chains."""

    name: str
    kind: str
    dir: Path
    start: dict[tuple[str, str], int]
    """(chain, address) -> balance before the first run: agents and fresh recipients."""
    agents: set[str]
    """The agents' addresses (EVM and Solana); fresh recipients never send anything."""

    @property
    def store(self) -> str:
        return f"sqlite:///{self.dir / 'state.db'}"


def make_scenario(
    kind: str, name: str, nodes: dict[str, EvmNode], sol: SolanaNode, tmp: Path
) -> Scenario:
    """Fund two fresh agents and write the daemon config of a `kind` scenario."""
    directory = tmp / name
    directory.mkdir(parents=True)
    mnemonics = [generate_mnemonic(12), generate_mnemonic(12)]
    wallets = [make_wallet("crash", mnemonics[0]), make_wallet("taker", mnemonics[1])]
    funds = {
        "arb": 10 * ETH,
        "base": ETH // 1000 if kind == "refund" else 10 * ETH,
        "sol": 10 * SOL,
    }
    start: dict[tuple[str, str], int] = {}
    for wallet in wallets:
        for chain, node in nodes.items():
            node.fund(wallet.evm_address, funds[chain])
            start[(chain, wallet.evm_address)] = funds[chain]
        sol.fund(wallet.solana_address, funds["sol"])
        start[("sol", wallet.solana_address)] = funds["sol"]
    plans, swaps = _plans(kind, name), []
    if kind in SWAPS:
        give, take = SWAPS[kind]
        swaps = [{"id": name, "give": dict(give), "take": dict(take)}]
    for plan in plans:
        for payment in plan["payments"]:
            start[(payment["chain"], payment["recipient"])] = 0
    config = {
        "store": f"sqlite:///{directory / 'state.db'}",
        "agent": "crash",
        "mnemonic": mnemonics[0],
        "taker_mnemonic": mnemonics[1],
        "swaps": swaps,
        "watcher": 1 if kind == "refund" else 25,  # long: nothing expires by accident
        "plans": plans,
        "solana": sol.url,
        "evm": {
            n: {"chain_id": e.chain_id, "url": e.url, "contract": e.contract}
            for n, e in nodes.items()
        },
    }
    (directory / "config.json").write_text(json.dumps(config))
    agents = {w.evm_address for w in wallets} | {w.solana_address for w in wallets}
    return Scenario(name, kind, directory, start, agents)


def _plans(kind: str, name: str) -> list[dict[str, Any]]:
    if kind not in ("pay", "refund"):
        return []
    arb = {"chain": "arb", "recipient": Account.create().address, "amount": ETH // 100}
    sol = {"chain": "sol", "recipient": str(Keypair().pubkey()), "amount": SOL // 10}
    base = {"chain": "base", "recipient": Account.create().address, "amount": ETH // 50}
    if kind == "pay":
        return [{"id": name, "payments": [arb, sol, base]}]
    first = sol if sum(name.encode()) % 2 else arb  # the base lock fails: the first refunds
    first["deadline_in"], base["amount"] = 10, ETH
    return [{"id": name, "payments": [first, base]}]


# -- running daemons -------------------------------------------------------------------


@dataclass
class Run:
    """One daemon process: how it was to die, how it ended, where it was."""

    kill: str | None
    code: int
    elapsed: float
    last_write: str = ""


class Zygote:
    """A forking parent (tests/atomic/_zygote.py) that runs daemons one at a time."""

    def __init__(self, log: Path) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(ZYGOTE), str(log)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self,
        scenario: Scenario,
        *,
        crash_write: str | None = None,
        kill_after: float | None = None,
        crash: str | None = None,
    ) -> Run:
        """Run `scenario`'s daemon to its exit or its kill: at a durable write
        (`crash_write`), after `kill_after` seconds, or at a journal boundary (`crash`)."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        writes = scenario.dir / "writes.log"
        with writes.open("a") as file:  # each run counts its commits from 1
            file.write(f"# run crash_write={crash_write} kill_after={kill_after} crash={crash}\n")
        request = {
            "config": str(scenario.dir / "config.json"),
            "crash": crash,
            "crash_write": crash_write,
            "kill_after": kill_after,
            "log": str(scenario.dir / "daemon.log"),
            "writes_log": str(writes),
        }
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = json.loads(self._process.stdout.readline())
        kill = None
        if crash_write or crash:
            kill = f"write {crash_write}" if crash_write else f"boundary {crash}"
        elif kill_after is not None:
            kill = f"random {kill_after:.3f}s"
        return Run(kill, int(answer["code"]), float(answer["elapsed"]), _last_write(writes))

    def close(self) -> None:
        self._process.kill()
        self._process.wait()


def _last_write(writes: Path) -> str:
    """The last durable commit the latest run logged (index and statements)."""
    last = ""
    for line in writes.read_text().splitlines():
        last = "" if line.startswith("#") else line.replace("\t", " ")
    return last


def run_scenario(scenario: Scenario, zygote: Zygote, kills: Sequence[dict[str, Any]]) -> list[Run]:
    """Run the daemon once per kill (``{"crash_write": ...}`` or ``{"kill_after": ...}``)
    until one run is not killed, then restart it cleanly until it exits 0."""
    runs: list[Run] = []
    for kill in kills:
        runs.append(zygote.run(scenario, **kill))
        if runs[-1].code != -9:
            break
    while (not runs or runs[-1].code != 0) and sum(run.kill is None for run in runs) < RESTARTS:
        runs.append(zygote.run(scenario))
    return runs


def count_writes(runs: Iterable[Run]) -> int:
    """The durable commits of the first clean run among `runs` (its last write's index)."""
    for run in runs:
        if run.kill is None and run.code == 0:
            return int(run.last_write.split(" ")[0] or 0)
    raise AssertionError("no clean run to count the writes of")


# -- judging from the chains -----------------------------------------------------------


@dataclass
class Verdict:
    """How one scenario ended, judged from the chains."""

    scenario: Scenario
    runs: list[Run]
    plans: dict[str, str]
    """plan id -> 'claimed', 'refunded', 'cancelled' (nothing locked), 'open' (an escrow
    still locked) or 'broken' (some legs claimed, others not)."""
    lost: dict[str, int]
    """unit -> what an agent lost: the leg it gave in a swap whose other leg it never got,
    plus any balance short of what the chains explain."""
    locked: dict[str, int]
    discrepancies: list[str]
    nonce_problems: list[str]

    @property
    def kills(self) -> int:
        return sum(run.code == -9 for run in self.runs)

    @property
    def ok(self) -> bool:
        return not (
            any(state in ("open", "broken") for state in self.plans.values())
            or any(self.lost.values())
            or self.discrepancies
            or self.nonce_problems
            or not self.runs
            or self.runs[-1].code != 0
        )

    @property
    def error(self) -> str:
        """The last line of the daemon's output, when its last run did not exit 0."""
        if self.runs and self.runs[-1].code == 0:
            return ""
        lines = (self.scenario.dir / "daemon.log").read_text(errors="replace").splitlines()
        return next((line for line in reversed(lines) if line.strip()), "")[:300]

    def describe(self) -> str:
        """One line for a report: scenario, kills, and what is wrong."""
        kills = "; ".join(
            f"{run.kill} -> {run.code} after {run.elapsed:.1f}s at [{run.last_write}]"
            for run in self.runs
            if run.kill
        )
        kills = (
            f"{kills or 'no kill'}; {len(self.runs)} runs, {sum(r.elapsed for r in self.runs):.1f}s"
        )
        wrong = [f"plans {self.plans}"] if not self.ok else []
        wrong += [f"lost {self.lost}"] if any(self.lost.values()) else []
        wrong += [f"locked {self.locked}"] if any(self.locked.values()) else []
        wrong += self.discrepancies + self.nonce_problems
        if not self.runs or self.runs[-1].code != 0:
            code = self.runs[-1].code if self.runs else None
            wrong.append(f"last run exited {code}: {self.error}")
        return f"{self.scenario.name} ({self.scenario.kind}): {kills}; " + (
            "; ".join(wrong) or "ok"
        )


def judge(
    scenario: Scenario,
    runs: list[Run],
    view: ChainView,
    *,
    start: dict[tuple[str, str], int] | None = None,
) -> Verdict:
    """Judge `scenario` from the chains (`start` overrides the starting balances)."""
    escrows = _escrows(scenario, view)
    rent = int(rpc(view.sol.url, "getMinimumBalanceForRentExemption", [program.ESCROW_LEN]))
    lost, locked = {"wei": 0, "lamports": 0}, {"wei": 0, "lamports": 0}
    plans = {}
    for plan_id, (swap, legs) in escrows.items():
        plans[plan_id] = plan_outcome([state for _, state in legs])
        for leg, state in legs:
            locked[UNIT[leg.chain]] += leg.amount if state == "locked" else 0
        for leg in swap_losses(legs) if swap else []:
            lost[UNIT[leg.chain]] += leg.amount
    actual = {key: view.balance(*key) for key in scenario.start}
    fees = {key: view.fees(*key) for key in scenario.start if key[1] in scenario.agents}
    every_leg = [leg for _, legs in escrows.values() for leg in legs]
    gaps = reconcile(start or scenario.start, every_leg, fees, actual, rent)
    discrepancies = []
    for (chain, address), gap in gaps.items():
        lost[UNIT[chain]] += max(0, -gap)
        discrepancies.append(f"{chain} {address}: balance off by {gap:+} {UNIT[chain]}")
    evm_agents = sorted({a for c, a in scenario.start if c in view.evm} & scenario.agents)
    nonces = [p for c in view.evm for a in evm_agents for p in view.nonce_problems(c, a)]
    return Verdict(scenario, runs, plans, lost, locked, discrepancies, nonces)


def _escrows(scenario: Scenario, view: ChainView) -> dict[str, tuple[bool, list[tuple[Leg, str]]]]:
    """plan id -> whether it is a swap, and each escrow of the plan in leg order (a swap's
    two once, though both sides journal them) with its state on chain."""
    # Read as it is, without migrating: a store the daemon cannot open is a finding too.
    engine = sa.create_engine(scenario.store)
    try:
        records: list[PlanRecord] = PlanStore(engine).plans()
    except OperationalError:  # no plan table: the daemon never got that far
        records = []
    finally:
        engine.dispose()
    legs: dict[str, dict[int, Leg]] = defaultdict(dict)
    swaps = {plan.plan_id for plan in records if plan.kind != "plan"}
    for plan in records:
        for leg in plan.legs:
            legs[plan.plan_id].setdefault(leg.index, leg)
    return {
        plan_id: (plan_id in swaps, [(found[i], view.escrow(found[i])) for i in sorted(found)])
        for plan_id, found in legs.items()
    }


# -- the campaign ----------------------------------------------------------------------


@dataclass
class Figures:
    """What a campaign did and found."""

    seed: int
    writes: int
    """Durable commits of one clean run of the every-write scenario (0 if not run)."""
    verdicts: list[Verdict] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The campaign's figures, as the script prints them."""
        runs = [run for verdict in self.verdicts for run in verdict.runs]
        outcomes = [state for verdict in self.verdicts for state in verdict.plans.values()]
        return {
            "seed": self.seed,
            "random_kills": sum(r.code == -9 and (r.kill or "").startswith("random") for r in runs),
            "write_kills": sum(r.code == -9 and (r.kill or "").startswith("write") for r in runs),
            "writes_per_swap": self.writes,
            "scenarios": len(self.verdicts),
            "daemon_runs": len(runs),
            **{
                f"plans_{state}": outcomes.count(state)
                for state in ("claimed", "refunded", "cancelled", "open", "broken")
            },
            "lost_wei": sum(v.lost["wei"] for v in self.verdicts),
            "lost_lamports": sum(v.lost["lamports"] for v in self.verdicts),
            "locked_wei": sum(v.locked["wei"] for v in self.verdicts),
            "locked_lamports": sum(v.locked["lamports"] for v in self.verdicts),
            "balance_discrepancies": sum(len(v.discrepancies) for v in self.verdicts),
            "nonce_problems": sum(len(v.nonce_problems) for v in self.verdicts),
            "failed_scenarios": sum(not v.ok for v in self.verdicts),
            "wall_seconds": round(self.wall, 1),
        }

    def failures(self) -> list[str]:
        return [verdict.describe() for verdict in self.verdicts if not verdict.ok]


@dataclass
class _Jobs:
    """The campaign's scenarios, handed out in a fixed order: every write kill first, then
    random-kill scenarios (kinds in turn, delays from the seeded RNG) until enough random
    kills are done or promised by scenarios still running."""

    rng: random.Random
    horizons: dict[str, float]
    target: int
    kinds: Sequence[str]
    per_scenario: int
    writes: list[tuple[str, str]] = field(default_factory=list)  # (kind, "after:n")
    done: int = 0
    promised: int = 0
    made: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> tuple[str, str, list[dict[str, Any]]] | None:
        with self.lock:
            if self.writes:
                kind, spec = self.writes.pop(0)
                return kind, f"w-{spec.replace(':', '-')}-{kind}", [{"crash_write": spec}]
            if self.done + self.promised >= self.target:
                return None
            kind = self.kinds[self.made % len(self.kinds)]
            delays = [
                round(self.rng.uniform(0.05, self.horizons[kind]), 3)
                for _ in range(self.per_scenario)
            ]
            self.made += 1
            self.promised += self.per_scenario
            return kind, f"r{self.made}-{kind}", [{"kill_after": delay} for delay in delays]

    def finished(self, verdict: Verdict) -> None:
        with self.lock:
            if verdict.scenario.name.startswith("r"):
                self.promised -= self.per_scenario
                self.done += sum(run.code == -9 for run in verdict.runs)


def campaign(
    nodes: dict[str, EvmNode],
    sol: SolanaNode,
    tmp: Path,
    *,
    kills: int,
    seed: int,
    every_write: bool,
    write_kind: str = "swap-arb-sol",
    modes: Sequence[str] = ("after", "before"),
    kinds: Sequence[str] = KINDS,
    per_scenario: int = 3,
    workers: int = 3,
    progress: Callable[[str], None] = lambda line: None,
) -> Figures:
    """Calibrate (one clean run per kind: its duration bounds the random delays, and the
    write kind's commits are counted), kill at every write of one `write_kind` scenario
    in each of `modes`, then at `kills` random instants; judge every scenario."""
    started = time.monotonic()
    players = _Players(nodes, sol, tmp, workers, progress)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        kinds_once = dict.fromkeys([*kinds, write_kind])
        calibration = list(pool.map(lambda kind: players.play(kind, f"cal-{kind}", []), kinds_once))
        counted = next(v for v in calibration if v.scenario.kind == write_kind)
        figures = Figures(seed, count_writes(counted.runs) if every_write else 0, calibration)
        horizons = {v.scenario.kind: max(1.0, v.runs[-1].elapsed) for v in calibration}
        jobs = _Jobs(random.Random(seed), horizons, kills, kinds, per_scenario)
        jobs.writes = [
            (write_kind, f"{m}:{n}") for m in modes for n in range(1, figures.writes + 1)
        ]
        for result in [pool.submit(players.work, jobs) for _ in range(workers)]:
            figures.verdicts += result.result()
    finally:  # zygotes first: their daemons die with them, so the workers end at once
        players.close()
        pool.shutdown(cancel_futures=True)
    figures.wall = time.monotonic() - started
    return figures


class _Players:
    """Runs and judges scenarios, one zygote per worker thread."""

    def __init__(
        self,
        nodes: dict[str, EvmNode],
        sol: SolanaNode,
        tmp: Path,
        workers: int,
        progress: Callable[[str], None],
    ) -> None:
        self.nodes, self.sol, self.tmp, self.progress = nodes, sol, tmp, progress
        self.view = ChainView(nodes, sol)
        self._zygotes = [Zygote(tmp.parent / f"zygote-{n}.log") for n in range(workers)]
        self._free = list(self._zygotes)
        self._lock = threading.Lock()

    def play(self, kind: str, name: str, kills: list[dict[str, Any]]) -> Verdict:
        """Run scenario `name` with `kills` and judge it."""
        with self._lock:
            zygote = self._free.pop()
        scenario = make_scenario(kind, name, self.nodes, self.sol, self.tmp)
        runs: list[Run] = []
        try:
            runs = run_scenario(scenario, zygote, kills)
            verdict = judge(scenario, runs, self.view)
        except Exception as exc:  # one broken scenario must not end a long campaign
            none = {"wei": 0, "lamports": 0}
            verdict = Verdict(scenario, runs, {}, none, none, [f"harness error: {exc!r}"], [])
        finally:
            with self._lock:
                self._free.append(zygote)
        self.progress(verdict.describe())
        return verdict

    def work(self, jobs: _Jobs) -> list[Verdict]:
        """Play jobs until there are none left."""
        verdicts = []
        while (job := jobs.next()) is not None:
            verdicts.append(self.play(*job))
            jobs.finished(verdicts[-1])
        return verdicts

    def close(self) -> None:
        for zygote in self._zygotes:
            zygote.close()
