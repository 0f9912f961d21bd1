"""`parkcarbon evidence ...`: consents, packs, verification, signing keys and bank API tokens (docs/evidence.md).

`verify` needs nothing but the pack (and optionally the park's public key or published key list); the other
actions work on the park's metadata database (and `build` on its store) like the portal does."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

import pandas as pd

VERIFY_EXIT = {0: "the pack verifies (and, with --recompute, every figure recomputes)",
               1: "verification failed: each problem is listed",
               2: "the pack or key cannot be read (or a usage error)"}


def _cli_user(park_id: str):
    from portal.auth import Role, User

    return User(username=f"cli:{getpass.getuser()}", park_id=park_id, role=Role.ADMIN, enterprise_id=None)


def _engine_park(settings):
    from park.metadata import load_park
    from portal.cli import _engine

    engine = _engine(settings)
    return engine, load_park(engine)


def cmd_request(args, settings) -> int:
    from portal.evidence import consent

    engine, park = _engine_park(settings)
    c = consent.request(engine, park.id, args.bank, args.enterprise, args.purpose, args.data.split(","),
                        args.period_from, args.period_to, pd.Timestamp(args.expires, tz=park.timezone),
                        actor=args.bank, note=args.note, project_start=args.project_start)
    print(f"consent {c.id} requested: {c.bank} -> {c.enterprise}, {c.purpose}, {','.join(c.data)}, {c.periods}, "
          f"expires {c.expires_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _decide(action: str):
    def cmd(args, settings) -> int:
        from portal.evidence import consent

        engine, _ = _engine_park(settings)
        c = getattr(consent, action)(engine, args.id, args.as_user, reason=args.reason)
        print(f"consent {c.id}: {c.state} by {args.as_user}")
        return 0

    return cmd


def cmd_list(args, settings) -> int:
    from datetime import UTC, datetime

    from portal.evidence import consent

    engine, park = _engine_park(settings)
    now = datetime.now(UTC)
    rows = consent.consents(engine, park.id, bank=args.bank, enterprise=args.enterprise)
    if not rows:
        print("no consents")
    for c in rows:
        print(f"{c.id:>5}  {c.status(now):<9} {c.bank:<16} {c.enterprise:<10} {c.purpose:<22} {','.join(c.data):<28} "
              f"{c.periods}  expires {c.expires_at:%Y-%m-%d}")
    return 0


def cmd_build(args, settings) -> int:
    from park.store import open_store
    from portal.context import PortalContext
    from portal.evidence import pack
    from portal.scope import scope_for

    engine, park = _engine_park(settings)
    store = open_store(settings, park.catalog())
    try:
        ctx = PortalContext(settings, engine, park, store)
        scope = scope_for(ctx, _cli_user(park.id), "cli:evidence")
        blob, manifest = pack.issue(ctx, scope, args.enterprise, args.period, bank=args.bank, report=not args.no_pdf)
    finally:
        store.close()
    out = Path(args.out) if args.out else Path(pack.pack_name(park.id, args.enterprise, manifest["period"]["label"]))
    if out.is_dir():
        out = out / pack.pack_name(park.id, args.enterprise, manifest["period"]["label"])
    out.write_bytes(blob)
    print(f"{out}: evidence pack of {args.enterprise} {manifest['period']['label']} for {args.bank} under consent "
          f"{manifest['consent']['id']}, signed by key {manifest['key_id']}")
    return 0


def cmd_verify(args, settings) -> int:
    from portal.evidence.verify import report, verify

    try:
        blob = Path(args.pack).read_bytes()
        key = Path(args.key).read_bytes() if args.key else None
        keys_json = Path(args.keys).read_bytes() if args.keys else None
    except OSError as exc:
        print(f"parkcarbon evidence verify: {exc}", file=sys.stderr)
        return 2
    try:
        res = verify(blob, key_pem=key, keys_json=keys_json, recompute=args.recompute)
    except ValueError as exc:
        print(f"parkcarbon evidence verify: {exc}", file=sys.stderr)
        return 2
    print(report(res))
    return 0 if res.ok else 1


def cmd_keys(args, settings) -> int:
    from portal.evidence import keys

    engine, park = _engine_park(settings)
    actor = f"cli:{getpass.getuser()}"
    if args.keys_command == "rotate":
        print(f"new signing key {keys.rotate(engine, park.id, settings.data_dir, actor)}; the old one stays "
              "published")
    elif args.keys_command == "revoke":
        keys.revoke(engine, args.key_id, actor, args.reason)
        print(f"key {args.key_id} revoked")
    elif args.keys_command == "export":
        Path(args.out).write_bytes(keys.published_json(engine, park.id))
        print(f"{args.out}: the park's published keys")
    else:
        for k in keys.published(engine, park.id):
            print(f"{k['key_id']}  {k['status']:<8} created {k['created_at'][:19]}"
                  + (f"  revoked: {k['revoked_reason']}" if k["revoked_at"] else ""))
    return 0


def cmd_token(args, settings) -> int:
    from portal.evidence import tokens

    engine, _ = _engine_park(settings)
    actor = f"cli:{getpass.getuser()}"
    if args.token_command == "add":
        token_id, token = tokens.add(engine, args.bank, actor, args.label)
        print(f"token {token_id} for {args.bank} (shown once; send it to the bank by a safe channel):\n{token}")
    elif args.token_command == "revoke":
        tokens.revoke(engine, args.id, actor)
        print(f"token {args.id} revoked")
    else:
        print(tokens.tokens(engine).to_string(index=False))
    return 0


def run(func):
    """Errors of the evidence layer as one line and exit status 2."""
    def wrapped(args, settings) -> int:
        from portal.evidence.consent import ConsentError, NoConsent
        from portal.evidence.keys import SigningKeyError
        from portal.evidence.pack import PackError
        from portal.evidence.tokens import TokenError

        try:
            return func(args, settings)
        except (ConsentError, NoConsent, SigningKeyError, PackError, TokenError) as exc:
            print(f"parkcarbon evidence: {exc}", file=sys.stderr)
            return 2

    return wrapped


def register(sub) -> argparse.ArgumentParser:
    """Add `evidence` to the parkcarbon sub-parsers."""
    from portal.evidence.consent import DATA, PURPOSES

    ev = sub.add_parser("evidence", help="green-loan evidence: consents, signed packs, verification, keys, tokens",
                        description="Bank consents, signed evidence packs and their offline verification "
                        "(docs/evidence.md).")
    es = ev.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")

    r = es.add_parser("request", help="a bank asks an enterprise for consent")
    r.add_argument("--bank", required=True, help="the bank's user name")
    r.add_argument("--enterprise", required=True)
    r.add_argument("--purpose", required=True, choices=PURPOSES)
    r.add_argument("--data", default="energy,emissions,utilisation", help=f"comma-separated, of {', '.join(DATA)}")
    r.add_argument("--from", dest="period_from", required=True, help="first month, YYYY-MM")
    r.add_argument("--to", dest="period_to", required=True, help="last month, YYYY-MM")
    r.add_argument("--expires", required=True, help="when the consent ends (date, park-local)")
    r.add_argument("--project-start", help="start date of the financed project (a retrofit), for data 'savings'; "
                   "the consented months must hold its 12-month baseline")
    r.add_argument("--note", default="")
    r.set_defaults(func=run(cmd_request))
    for action, helptext in (("grant", "the enterprise grants a request"), ("refuse", "the enterprise refuses it"),
                             ("revoke", "the bank or the enterprise ends a request or consent")):
        d = es.add_parser(action, help=helptext)
        d.add_argument("id", type=int)
        d.add_argument("--as", dest="as_user", required=True, help="the portal user acting (enterprise or bank)")
        d.add_argument("--reason", default="")
        d.set_defaults(func=run(_decide(action)))
    ls = es.add_parser("list", help="consents with their state")
    ls.add_argument("--bank")
    ls.add_argument("--enterprise")
    ls.set_defaults(func=run(cmd_list))
    b = es.add_parser("build", help="build and sign the pack of an enterprise and period for a bank",
                      description="Only under the bank's consent in force covering the enterprise and every month "
                      "of the period; logged in the consent's history and the audit log.")
    b.add_argument("--enterprise", required=True)
    b.add_argument("--period", required=True, help="a year (2024) or a month (2024-03)")
    b.add_argument("--bank", required=True, help="the bank the pack is for (its consent is checked)")
    b.add_argument("--out", help="file or folder (default: evidence-<park>-<enterprise>-<period>.zip here)")
    b.add_argument("--no-pdf", action="store_true", help=argparse.SUPPRESS)
    b.set_defaults(func=run(cmd_build))
    v = es.add_parser("verify", help="verify a pack offline: signature, hashes, and recomputed figures",
                      formatter_class=argparse.RawDescriptionHelpFormatter,
                      description="Check the pack's Ed25519 signature and the SHA-256 of every file, and say exactly "
                      "what failed. Needs nothing but the pack.",
                      epilog="exit status:\n" + "\n".join(f"  {k}  {v}" for k, v in VERIFY_EXIT.items()))
    v.add_argument("pack", type=Path)
    v.add_argument("--key", help="the park's public key (PEM); default: the pack's signing_key.pem, which only "
                   "proves the pack is whole, not whose it is")
    v.add_argument("--keys", help="the park's published key list (keys.json): an unknown or revoked key fails")
    v.add_argument("--recompute", action="store_true",
                   help="recompute every headline figure from the pack's data files and factor rows")
    v.set_defaults(func=cmd_verify)
    k = es.add_parser("keys", help="the park's signing keys: list, rotate, revoke, export the published list")
    ks = k.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    ks.add_parser("list", help="every key with its status")
    ks.add_parser("rotate", help="a new signing key; the old one stays published")
    kr = ks.add_parser("revoke", help="revoke a compromised key")
    kr.add_argument("key_id")
    kr.add_argument("--reason", required=True)
    ke = ks.add_parser("export", help="write the published key list (keys.json)")
    ke.add_argument("out")
    k.set_defaults(func=run(cmd_keys))
    t = es.add_parser("token", help="bank API tokens: add, revoke, list")
    ts = t.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    ta = ts.add_parser("add", help="a new token for a bank (printed once)")
    ta.add_argument("--bank", required=True)
    ta.add_argument("--label", default="")
    tr = ts.add_parser("revoke")
    tr.add_argument("id", type=int)
    ts.add_parser("list")
    t.set_defaults(func=run(cmd_token))
    return ev


def key_line(settings) -> str:
    """Made by `parkcarbon init`: the park's signing key, created (0600) when it has none."""
    from portal.evidence import keys

    engine, park = _engine_park(settings)
    key_id, created = keys.ensure_key(engine, park.id, settings.data_dir, actor="cli")
    return (f"evidence signing key: {key_id} ({'created' if created else 'kept'}; "
            f"{keys.key_dir(settings.data_dir) / (key_id + '.pem')}, mode 0600)")
