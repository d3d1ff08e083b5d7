"""`hoso`: the operator's command line (API.md "Command line").

Exit status 0 on success; otherwise one clear line on stderr and a non-zero status
(`hoso verify`: 1 a check failed, 2 bad usage, 3 consistent but authenticity unproven).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .settings import Settings, SettingsError

EXIT_UNPROVEN = 3  # `hoso verify`: consistent, but nothing pinned shows who made it


class CliError(Exception):
    pass


class VerifyFailed(CliError):
    pass


class VerifyUnproven(CliError):
    """Every check passed, but against keys nobody pinned: exit status 3."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return Settings.from_env(**overrides)


def _migrate(settings: Settings) -> None:
    from .db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)


def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from .db.engine import Database

    async def run() -> Any:
        db = Database(settings.db_url)
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _serve(settings: Settings) -> None:
    import uvicorn

    from .app import create_app

    _migrate(settings)
    app = create_app(settings)
    app.state.signatures.start()  # in the background: ready before the first sync
    # everything built so far (modules, the app, its routes and templates) lives as long as
    # the process: into the collector's permanent generation, so the collections that
    # requests' allocations set off no longer walk it each time
    gc.collect()
    gc.freeze()
    print(f"HoSo Courier on {settings.base_url}  (data: {settings.data_dir.resolve()})", flush=True)
    # open consoles keep a live-update stream forever: give them 3 s, then stop anyway
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        log_level="info",
        # the client address is the TCP peer; X-Forwarded-For counts only from HOSO_TRUSTED_PROXIES
        # (auth/clients.py), never from uvicorn's default of trusting 127.0.0.1
        proxy_headers=False,
        timeout_graceful_shutdown=3,
    )


def cmd_serve(args: argparse.Namespace) -> None:
    _serve(_settings(args))


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _migrate(settings)
    print(f"database is at the latest schema: {settings.db_url.split('@')[-1]}")


def cmd_unit_add(args: argparse.Namespace) -> None:
    from .auth import service

    settings = _settings(args)
    _migrate(settings)
    unit_id = _with_db(settings, lambda db: service.add_unit(db, args.code, args.name, args.kind))
    print(f"unit {args.code} created (id {unit_id})")


def _read_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise CliError("no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise CliError("the two passwords differ")
    return first


def cmd_user_add(args: argparse.Namespace) -> None:
    from .auth import service

    settings = _settings(args)
    _migrate(settings)
    password = _read_password()
    user_id = _with_db(
        settings,
        lambda db: service.add_user(db, args.username, password, args.role, args.unit, args.full_name or ""),
    )
    print(f"user {args.username} ({args.role}) created (id {user_id})")


def _start_app(
    server_url: str, port: int, open_browser: bool = False, data_dir: Path | None = None
) -> subprocess.Popen[bytes]:
    """The courier app runs in its own process (server and app never import each other)."""
    cmd = [sys.executable, "-m", "courier_app.main", "--server", server_url, "--port", str(port)]
    if not open_browser:
        cmd.append("--no-browser")
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.Popen(cmd, env={**os.environ, "FLET_WEB_NO_CDN": "1"})


def cmd_app(args: argparse.Namespace) -> None:
    proc = _start_app(args.server, args.port, open_browser=not args.no_browser, data_dir=args.data_dir)

    def stop(*_: object) -> None:  # a SIGTERM to `hoso app` stops the app too, never orphans it
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
        sys.exit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code:
        raise CliError(f"the courier app stopped with status {code}")


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import prepare_demo

    base = Settings.from_env(host=args.host, port=args.port)
    settings = prepare_demo(base)
    if args.no_serve:
        return
    app = None
    if not args.no_app:
        # the phone's outbox lives with the demo data, so a fresh demo starts a fresh phone
        app = _start_app(settings.base_url, args.app_port, data_dir=settings.data_dir / "courier-app")
        print(
            f"Courier app: http://127.0.0.1:{args.app_port}/  (sign in as buuta1 / hoso-demo)",
            flush=True,
        )

    def stop_app(*_: object) -> None:
        if app is not None and app.poll() is None:
            app.terminate()
            app.wait(timeout=20)

    # uvicorn re-raises SIGTERM after its own shutdown; stop the app before the process ends
    def on_sigterm(*_: object) -> None:
        stop_app()
        sys.exit(143)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        _serve(settings)
    finally:
        stop_app()
        signal.signal(signal.SIGTERM, previous)


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    from .keys import rotate_key

    settings = _settings(args)
    old, new = rotate_key(settings.keys_dir, args.name)
    print(f"{args.name} key rotated: {old} is retired (still listed), {new} signs from now on.")
    print("Restart the server so it signs with the new key.")


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from .keys import revoke_key

    settings = _settings(args)
    try:
        public = revoke_key(settings.keys_dir, args.name, args.kid)
    except ValueError as exc:
        raise CliError(f"keys revoke: {exc}") from None
    print(f"{args.name} key {args.kid} ({public}) revoked: labels it signed are refused from now on.")
    print("Restart the server; phones pick up the revocation the next time they are online.")


def cmd_apikey_create(args: argparse.Namespace) -> None:
    from .intake import service

    settings = _settings(args)
    _migrate(settings)
    issued = _with_db(settings, lambda db: service.create_key(db, args.unit, args.name or ""))
    print(issued.key)
    print(
        f"API key {issued.prefix} for {issued.unit}: shown this once, only its hash is kept. "
        "Give it to the unit's software as `Authorization: Bearer KEY` (or `X-API-Key: KEY`).",
        file=sys.stderr,
    )


def cmd_apikey_revoke(args: argparse.Namespace) -> None:
    from .intake import service

    settings = _settings(args)
    _migrate(settings)
    changed = _with_db(settings, lambda db: service.revoke_key(db, args.prefix))
    state = "revoked: refused from the next request on" if changed else "was revoked already"
    print(f"API key {service._prefix_of(args.prefix)} {state}.")


def cmd_apikey_list(args: argparse.Namespace) -> None:
    from .intake import service

    settings = _settings(args)
    _migrate(settings)
    for k in _with_db(settings, service.list_keys):
        revoked = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        print(f"{k.prefix}\t{k.unit_code}\t{revoked}\t{k.created_at:%Y-%m-%d %H:%M}\t{k.name}")


def _print_checks(checks: list[Any]) -> bool:
    ok = True
    for check in checks:
        mark = "FAIL" if not check.ok else " -- " if check.unproven else "ok  "
        notes = list(check.notes)
        if check.ok and check.failures:
            notes.insert(0, check.failures[0])
        print(f"  [{mark}] {check.name}" + (f"  ({notes[0]})" if notes else ""))
        for note in notes[1:]:
            print(f"         · {note}")
        if not check.ok:
            ok = False
            for failure in check.failures[:20]:
                print(f"         - {failure}")
            if len(check.failures) > 20:
                print(f"         … and {len(check.failures) - 20} more")
    return ok


def _read_trust(values: list[str]) -> Any:
    """`--trust` values: files (a saved GET /api/v1/keys answer, or a witness key), or a witness key."""
    from shared.bundle import Trust, parse_trust

    trust = Trust()
    for value in values:
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8") if path.is_file() else value
            trust = trust | parse_trust(text)
        except OSError as exc:
            raise CliError(f"cannot read the trusted keys {value}: {exc}") from None
        except ValueError as exc:
            what = value if path.is_file() else "the --trust value"
            raise CliError(f"{what} is not a keys file or a witness key: {exc}") from None
    return trust


def _describe_trust(trust: Any) -> str:
    parts = []
    if trust.server_pinned:
        retired = len(trust.log_keys) - 1
        parts.append(
            f"server log key {trust.log_keys[0][:10]}…" + (f" (+{retired} retired)" if retired else "")
        )
    parts += [f"witness {k[:10]}…" for k in trust.witness_keys]
    return ", ".join(parts) if parts else "nothing (no --trust): authenticity cannot be shown"


def cmd_verify(args: argparse.Namespace) -> None:
    import json

    from shared.bundle import FAILED, UNPROVEN, check_consistency, outcome, verify_bundle

    if not args.file and not args.against:
        raise CliError("give an export bundle FILE, or --against HEAD.json URL, or both")
    trust = _read_trust(args.trust or [])
    ok, unproven = True, False
    if args.file:
        try:
            bundle = json.loads(Path(args.file).read_text(encoding="utf-8"))
            if not isinstance(bundle, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read {args.file}: {exc}") from None
        code = (bundle.get("shipment") or {}).get("code", "?")
        n = len(bundle.get("events") or [])
        print(f"Custody record of shipment {code}: {n} events (bundle version {bundle.get('v')})")
        print(f"Pinned: {_describe_trust(trust)}")
        checks = verify_bundle(bundle, trust)
        _print_checks(checks)
        result = outcome(checks)
        ok = result != FAILED
        unproven = result == UNPROVEN
    if args.against:
        import httpx

        head_file, url = args.against
        try:
            old = json.loads(Path(head_file).read_text(encoding="utf-8"))
            base = url.rstrip("/")
            with httpx.Client(timeout=30) as http:
                new = http.get(f"{base}/api/v1/log/head").raise_for_status().json()
                keys = http.get(f"{base}/api/v1/keys").raise_for_status().json()
                proof: list[str] = []
                if 0 < old["size"] < new["size"]:
                    proof = (
                        http.get(
                            f"{base}/api/v1/log/consistency",
                            params={"first": old["size"], "second": new["size"]},
                        )
                        .raise_for_status()
                        .json()["proof"]
                    )
        except (OSError, ValueError, KeyError, httpx.HTTPError) as exc:
            raise CliError(f"cannot compare with the live log: {exc}") from None
        from shared.bundle import key_set

        # pinned log keys when given; else the server's own (the saved head must verify under them)
        log_keys = list(trust.log_keys) if trust.server_pinned else key_set(keys, "log")
        print(f"Live log at {url}: size {new['size']}; saved head: size {old['size']}")
        ok = _print_checks(check_consistency(old, new, proof, log_keys)) and ok
    if not ok:
        raise VerifyFailed("verification FAILED: see the checks marked FAIL above")
    if unproven:
        print("structure verified; authenticity UNPROVEN (see the checks marked --)")
        raise VerifyUnproven(
            "authenticity unproven: pin the server's keys (--trust keys.json, saved from GET /api/v1/keys) "
            "or a witness's public key"
        )
    print("verification passed" + (": authentic under the pinned keys" if args.file else ""))


def cmd_worker(args: argparse.Namespace) -> None:
    """Outbox workers beside (or instead of) the one inside `hoso serve` (docs/NOTIFICATIONS.md)."""
    from .db.engine import Database
    from .keys import load_keys
    from .outbox.worker import Worker

    settings = _settings(args)
    _migrate(settings)
    keys = load_keys(settings.keys_dir)

    async def run() -> None:
        db = Database(settings.db_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = Worker(db, settings, keys, name=args.name)
        print(f"outbox worker {worker.name} on {settings.db_url.split('@')[-1]}", flush=True)
        try:
            await worker.run(stop)
        finally:
            await worker.channels.close()
            await db.dispose()

    asyncio.run(run())


def cmd_webhook(args: argparse.Namespace) -> None:
    from .outbox import service

    settings = _settings(args)
    _migrate(settings)
    if args.webhook_command == "add":
        sid, secret = _with_db(
            settings, lambda db: service.add_subscription(db, args.unit, args.url, args.events.split(","))
        )
        print(
            f"webhook {sid} for {args.unit} -> {args.url}\n"
            f"secret (give it to the receiver; shown once): {secret}"
        )
    elif args.webhook_command == "rotate":
        secret = _with_db(settings, lambda db: service.rotate_secret(db, args.id))
        print(f"webhook {args.id}: new secret {secret}\nthe previous secret signs beside it for 24 hours")
    elif args.webhook_command in ("disable", "enable"):
        _with_db(settings, lambda db: service.set_active(db, args.id, args.webhook_command == "enable"))
        print(f"webhook {args.id} {args.webhook_command}d")
    else:
        for r in _with_db(settings, service.subscriptions):
            state = "active" if r.active else "disabled"
            print(f"{r.id}\t{r.unit_code}\t{state}\t{','.join(r.event_types)}\t{r.url}")


def cmd_notify(args: argparse.Namespace) -> None:
    from .outbox import service

    settings = _settings(args)
    _migrate(settings)
    templates = {}
    for item in args.template or []:
        topic, sep, template_id = item.partition("=")
        if not sep or not template_id:
            raise CliError(f"--template takes TOPIC=TEMPLATE_ID, got {item!r}")
        templates[topic] = template_id
    _with_db(
        settings, lambda db: service.set_notify(db, args.unit, args.channel, templates, args.sms_sender or "")
    )
    print(f"unit {args.unit}: citizens are told by {args.channel}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hoso", description="HoSo Courier: chain of custody for dossiers by post"
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="migrate the database, then serve the API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(fn=cmd_serve)

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply all migrations").set_defaults(fn=cmd_db_upgrade)

    unit = sub.add_parser("unit", help="post offices and one-stop shops")
    usub = unit.add_subparsers(dest="unit_command", required=True)
    ua = usub.add_parser("add", help="create a unit")
    ua.add_argument("code")
    ua.add_argument("--name", required=True)
    ua.add_argument("--kind", required=True, choices=["post_office", "one_stop_shop"])
    ua.set_defaults(fn=cmd_unit_add)

    user = sub.add_parser("user", help="accounts")
    usersub = user.add_subparsers(dest="user_command", required=True)
    ad = usersub.add_parser("add", help="create a user; password from stdin or prompted twice")
    ad.add_argument("username")
    ad.add_argument("--role", required=True, choices=["courier", "clerk", "dispatcher", "admin", "auditor"])
    ad.add_argument("--unit", help="unit code (required for couriers and clerks)")
    ad.add_argument("--full-name", dest="full_name")
    ad.set_defaults(fn=cmd_user_add)

    keys = sub.add_parser("keys", help="the server's signing keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kr = ksub.add_parser(
        "rotate", help="retire a key (it stays listed so old records verify) and make a new one"
    )
    kr.add_argument("name", choices=["label", "event", "log"])
    kr.set_defaults(fn=cmd_keys_rotate)
    kv = ksub.add_parser("revoke", help="revoke a retired label key (its labels are refused as compromised)")
    kv.add_argument("name", choices=["label"])
    kv.add_argument("kid", help="the key id (GET /api/v1/keys, label_keys[].kid)")
    kv.set_defaults(fn=cmd_keys_revoke)

    ak = sub.add_parser("apikey", help="API keys of a unit's software (dossier intake, docs/API.md)")
    aksub = ak.add_subparsers(dest="apikey_command", required=True)
    akc = aksub.add_parser("create", help="a new key for a unit, printed once on standard output")
    akc.add_argument("unit", help="the unit code, e.g. TTHCC-GL")
    akc.add_argument("--name", help="whose software it is, e.g. 'Phần mềm một cửa tỉnh'")
    akc.set_defaults(fn=cmd_apikey_create)
    akr = aksub.add_parser("revoke", help="revoke a key (by its prefix, or the whole key)")
    akr.add_argument("prefix")
    akr.set_defaults(fn=cmd_apikey_revoke)
    aksub.add_parser("list", help="every key: prefix, unit, state, created, name").set_defaults(
        fn=cmd_apikey_list
    )

    v = sub.add_parser(
        "verify", help="check a custody export offline; or a saved tree head against a live log"
    )
    v.add_argument("file", nargs="?", help="export bundle (GET /api/v1/shipments/CODE/custody)")
    v.add_argument(
        "--against",
        nargs=2,
        metavar=("HEAD.json", "URL"),
        help="a tree head saved earlier, and the server whose log must extend it",
    )
    v.add_argument(
        "--trust",
        action="append",
        metavar="KEYS",
        help="keys the record must be signed with: a keys file saved from GET /api/v1/keys, or a "
        "witness's public key (or a file holding it) whose co-signature the tree head must carry; "
        "repeatable (a key that starts with '-' is written --trust=KEY). Without it the exit status "
        "is 3: consistent, authenticity unproven",
    )
    v.set_defaults(fn=cmd_verify)

    w = sub.add_parser("worker", help="an outbox worker: sends SMS, Zalo ZNS and webhooks until stopped")
    w.add_argument("--name", help="the worker's name in claimed rows (default host:pid)")
    w.set_defaults(fn=cmd_worker)

    wh = sub.add_parser("webhook", help="units' webhook subscriptions (Standard Webhooks)")
    whsub = wh.add_subparsers(dest="webhook_command", required=True)
    wa = whsub.add_parser("add", help="subscribe a unit's endpoint; prints the secret once")
    wa.add_argument("unit")
    wa.add_argument("url")
    wa.add_argument(
        "--events",
        required=True,
        help="comma-separated: registered,assigned,picked_up,delivery_failed,delivered,returned,confirmed",
    )
    wa.set_defaults(fn=cmd_webhook)
    for name, text in (
        ("rotate", "a new secret; the previous one signs beside it for 24 h"),
        ("disable", "stop sending"),
        ("enable", "send again"),
    ):
        x = whsub.add_parser(name, help=text)
        x.add_argument("id", type=int)
        x.set_defaults(fn=cmd_webhook)
    whsub.add_parser("list", help="every subscription").set_defaults(fn=cmd_webhook)

    nt = sub.add_parser("notify", help="how a unit tells citizens: sms, zalo (ZNS templates) or off")
    nt.add_argument("unit")
    nt.add_argument("--channel", required=True, choices=["sms", "zalo", "off"])
    nt.add_argument(
        "--template",
        action="append",
        help="TOPIC=ZNS_TEMPLATE_ID (pin, registered, result_ready, on_the_way, delivery_failed, delivered)",
    )
    nt.add_argument("--sms-sender", help="the unit's SMS brand name (at most 11 characters)")
    nt.set_defaults(fn=cmd_notify)

    d = sub.add_parser("demo", help="fresh demo data set (SQLite under HOSO_DATA_DIR/demo), then serve")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--no-serve", action="store_true", help="only build the demo data set")
    d.add_argument("--app-port", type=int, default=8550, help="port of the courier app (browser)")
    d.add_argument("--no-app", action="store_true", help="serve without the courier app")
    d.set_defaults(fn=cmd_demo)

    a = sub.add_parser("app", help="the courier app in the browser (Flet), against a server")
    a.add_argument("--server", default=os.environ.get("HOSO_SERVER_URL", "http://127.0.0.1:8000"))
    a.add_argument("--port", type=int, default=8550)
    a.add_argument("--no-browser", action="store_true", help="serve only; open the printed URL yourself")
    a.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where this phone keeps its outbox, device key and session (default var/courier)",
    )
    a.set_defaults(fn=cmd_app)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except KeyboardInterrupt:
        return 130
    except VerifyFailed as exc:
        print(f"hoso: {exc}", file=sys.stderr)
        return 1
    except VerifyUnproven as exc:
        print(f"hoso: {exc}", file=sys.stderr)
        return EXIT_UNPROVEN
    except (CliError, SettingsError) as exc:
        print(f"hoso: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one clear line, not a traceback, for operators
        from litestar.exceptions import HTTPException

        detail = exc.detail if isinstance(exc, HTTPException) else f"{type(exc).__name__}: {exc}"
        print(f"hoso: {detail}", file=sys.stderr)
        if os.environ.get("HOSO_DEBUG"):
            raise
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
