"""Operator commands for identity, run next to the service with the same settings:

    python -m services.identity.admin create-staff --email agent@ville.fr --name "Anne Agent" --role agent
    python -m services.identity.admin rotate-keys

Staff accounts are never created by self-registration: the owner receives an email with a link
to choose a password. The running identity service relays the events (its outbox).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from services.identity.domain import Role
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.identity.store import IdentityStore
from services.identity.usecases import IdentityError, IdentityService, load_keyring, rotate_keys
from services.kernel import mongo


async def run(args: argparse.Namespace) -> int:
    settings = IdentitySettings()
    client = mongo.connect(settings.mongo_url, settings.mongo_timeout_ms)
    try:
        store = IdentityStore(client[settings.database_name])
        await store.ensure_indexes()
        now = datetime.now(UTC)
        if args.command == "rotate-keys":
            kid, retired = await rotate_keys(store, settings, now)
            print(f"new signing key {kid} (signs in about a minute); retired: {', '.join(retired) or 'none'}")
            return 0
        identity = IdentityService(store, settings, Passwords(), await load_keyring(store, settings, now))
        try:
            account_id = await identity.create_staff(args.email, args.name, Role(args.role))
        except IdentityError as exc:
            print(exc.message, file=sys.stderr)
            return 1
        print(f"{args.role} account {account_id} created; an email invites {args.email} to choose a password")
        return 0
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    staff = commands.add_parser("create-staff", help="create an agent or admin account")
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", required=True)
    staff.add_argument("--role", required=True, choices=[Role.AGENT.value, Role.ADMIN.value])
    commands.add_parser("rotate-keys", help="add a new token signing key and retire expired ones")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
