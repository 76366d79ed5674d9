"""Solana JSON-RPC 2.0 over HTTP on loopback, backed by LiteSVM (:class:`SvmLedger`).

Run as its own process: ``python -m chains.families.solana.solana_rpc --port 8899`` (add
``--program ID=ELF`` to deploy programs). It serves the methods the Solana adapter and
the HTLC client (solana-py's AsyncClient) use, including the transaction history a
revealed HTLC preimage is read from (``getSignaturesForAddress`` with agave's
``limit``/``before``/``until`` semantics, ``getTransaction`` with the message and the
inner instructions), plus test controls in the spirit of anvil's ``anvil_*`` methods:
``covenant_advanceBlocks [n]``, ``covenant_setHold [bool]`` (accept transactions but do
not process them yet), ``covenant_releaseHeld []``, ``covenant_setAccount [address,
{lamports, owner, data (base64), executable}]`` (like ``anvil_setCode``: write state no
transaction could) and ``covenant_addProgram [program_id, elf (base64)]``.
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from bip_utils import Base58Decoder
from solders.pubkey import Pubkey

from chains.families.solana._svm import RpcFailure, SvmLedger

Handler = Callable[[SvmLedger, list[Any]], Any]


def _context(ledger: SvmLedger, value: Any) -> dict[str, Any]:
    return {"context": {"slot": ledger.height, "apiVersion": "2.1.0"}, "value": value}


def _decode_tx(params: list[Any]) -> tuple[bytes, dict[str, Any]]:
    if not params or not isinstance(params[0], str):
        raise RpcFailure(-32602, "invalid params: expected a serialized transaction string")
    options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    encoded = params[0]
    try:
        if options.get("encoding", "base58") == "base64":
            return base64.b64decode(encoded, validate=True), options
        return bytes(Base58Decoder.Decode(encoded)), options
    except ValueError as exc:
        raise RpcFailure(-32602, f"invalid transaction encoding: {exc}") from exc


def _latest_blockhash(ledger: SvmLedger, _params: list[Any]) -> Any:
    blockhash, last_valid = ledger.latest_blockhash()
    return _context(ledger, {"blockhash": blockhash, "lastValidBlockHeight": last_valid})


def _send(ledger: SvmLedger, params: list[Any]) -> Any:
    raw, options = _decode_tx(params)
    return ledger.send(raw, skip_preflight=bool(options.get("skipPreflight", False)))


def _simulate(ledger: SvmLedger, params: list[Any]) -> Any:
    raw, options = _decode_tx(params)
    result = ledger.simulate(raw, sig_verify=bool(options.get("sigVerify", False)))
    return _context(ledger, {**result, "accounts": None, "returnData": None})


def _statuses(ledger: SvmLedger, params: list[Any]) -> Any:
    return _context(ledger, ledger.statuses([str(s) for s in params[0]]))


MAX_SIGNATURES_LIMIT = 1000  # agave's MAX_GET_CONFIRMED_SIGNATURES_FOR_ADDRESS2_LIMIT


def _signatures_for(ledger: SvmLedger, params: list[Any]) -> Any:
    options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    limit = options.get("limit")
    limit = MAX_SIGNATURES_LIMIT if limit is None else int(limit)
    if not 0 < limit <= MAX_SIGNATURES_LIMIT:  # agave refuses, it does not clamp
        raise RpcFailure(-32602, f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
    return ledger.signatures_for(
        str(params[0]), limit=limit, before=options.get("before"), until=options.get("until")
    )


def _transaction(ledger: SvmLedger, params: list[Any]) -> Any:
    options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    if options.get("encoding", "json") not in ("json", "base64"):
        raise RpcFailure(-32602, f"encoding {options['encoding']!r} is not served; use base64")
    return ledger.transaction(str(params[0]))


def _set_hold(ledger: SvmLedger, params: list[Any]) -> Any:
    ledger.hold = bool(params[0])
    return ledger.hold


def _set_account(ledger: SvmLedger, params: list[Any]) -> Any:
    if len(params) != 2 or not isinstance(params[1], dict):
        raise RpcFailure(-32602, "invalid params: expected [address, {lamports, owner, data}]")
    ledger.set_account(str(params[0]), params[1])
    return None


def _add_program(ledger: SvmLedger, params: list[Any]) -> Any:
    ledger.add_program(str(params[0]), base64.b64decode(str(params[1]), validate=True))
    return None


def _commitment(params: list[Any]) -> str:
    """The commitment a read asks for; agave's default, when it names none, is finalized
    (``CommitmentConfig::default``)."""
    options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    return str(options.get("commitment") or "finalized")


def _accounts(ledger: SvmLedger, params: list[Any]) -> Any:
    commitment = _commitment(params)
    return _context(ledger, [ledger.account(a, commitment) for a in params[0]])


METHODS: dict[str, Handler] = {
    "getLatestBlockhash": _latest_blockhash,
    "getBalance": lambda ledger, p: _context(ledger, ledger.balance(p[0], _commitment(p))),
    "getAccountInfo": lambda ledger, p: _context(ledger, ledger.account(p[0], _commitment(p))),
    "getMultipleAccounts": _accounts,
    "sendTransaction": _send,
    "simulateTransaction": _simulate,
    "getSignatureStatuses": _statuses,
    "getSignaturesForAddress": _signatures_for,
    "getTransaction": _transaction,
    "getBlockHeight": lambda ledger, _p: ledger.current_height(),
    "getSlot": lambda ledger, _p: ledger.current_height(),
    "getMinimumBalanceForRentExemption": lambda ledger, p: ledger.minimum_rent(int(p[0])),
    "getGenesisHash": lambda ledger, _p: ledger.genesis_hash,
    "getHealth": lambda _ledger, _p: "ok",
    "getVersion": lambda _ledger, _p: {"solana-core": "2.1.0-litesvm", "feature-set": 0},
    "requestAirdrop": lambda ledger, p: ledger.airdrop(p[0], int(p[1])),
    "covenant_advanceBlocks": lambda ledger, p: ledger.advance(int(p[0]) if p else 1),
    "covenant_setHold": _set_hold,
    "covenant_releaseHeld": lambda ledger, _p: ledger.release_held(),
    "covenant_setAccount": _set_account,
    "covenant_addProgram": _add_program,
}


def answer(ledger: SvmLedger, request: Any) -> dict[str, Any]:
    """The JSON-RPC response object for one request object."""
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return _error(None, -32600, "invalid request")
    rid = request.get("id")
    handler = METHODS.get(request["method"])
    if handler is None:
        return _error(rid, -32601, f"Method not found: {request['method']}")
    params = request.get("params") or []
    try:
        result = handler(ledger, params if isinstance(params, list) else [params])
    except RpcFailure as failure:
        return _error(rid, failure.code, failure.message, failure.data)
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        return _error(rid, -32602, f"invalid params: {exc}")
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": error}


def make_app(ledger: SvmLedger) -> web.Application:
    """The aiohttp application serving `ledger` at POST /."""

    async def handle(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(_error(None, -32700, "parse error"))
        if isinstance(body, list):
            return web.json_response([answer(ledger, item) for item in body])
        return web.json_response(answer(ledger, body))

    app = web.Application(client_max_size=2**20)
    app.router.add_post("/", handle)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--block-time", type=float, default=0.4)
    parser.add_argument("--finality-depth", type=int, default=32)
    parser.add_argument(
        "--program",
        action="append",
        default=[],
        metavar="ID=ELF",
        help="Deploy the program at path ELF under program id ID (repeatable).",
    )
    args = parser.parse_args(argv)
    ledger = SvmLedger(block_time=args.block_time, finality_depth=args.finality_depth)
    for program in args.program:
        program_id, _, path = program.partition("=")
        ledger.svm.add_program(Pubkey.from_string(program_id), Path(path).read_bytes())
    web.run_app(make_app(ledger), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
