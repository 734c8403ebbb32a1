"""`manage.py eventing_token <username>`: print an API bearer JWT acting as that user."""

from __future__ import annotations

import re
import time

import jwt
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from eventing.conf import settings

DURATION_RE = re.compile(r"^(\d+)([smhd]?)\Z")
UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_expires(value: str) -> int | None:
    """Seconds from `30m`, `12h`, `7d`, `3600` or `3600s`; None for `never`."""
    text = value.strip().lower()
    if text == "never":
        return None
    match = DURATION_RE.match(text)
    if not match or int(match.group(1)) == 0:
        raise CommandError(
            f"--expires {value!r}: give a positive duration such as 30m, 12h, 7d or 3600 "
            "(seconds), or 'never'."
        )
    return int(match.group(1)) * UNIT_S[match.group(2)]


def client_token(username: str, expires_s: int | None, now: float | None = None) -> str:
    """A HS256 JWT with `sub` = `username`, signed with the first EVENTING["CLIENT_SECRETS"]."""
    secrets = [secret for secret in settings.CLIENT_SECRETS or [] if secret]
    if not secrets:
        raise CommandError(
            "EVENTING['CLIENT_SECRETS'] is empty, so no bearer JWT would verify. Set "
            "EVENTING_CLIENT_SECRETS (the standalone project: `make run` writes "
            "var/client-secret.txt) or add a client secret to your settings."
        )
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {"sub": username, "iat": issued}
    if expires_s is not None:
        claims["exp"] = issued + expires_s
    return jwt.encode(claims, secrets[0], algorithm="HS256")


class Command(BaseCommand):
    help = (
        "Print a bearer JWT for the HTTP API acting as <username> (an active user), signed with "
        "the first EVENTING['CLIENT_SECRETS'] entry. Use it as 'Authorization: Bearer <token>'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="An active Django user; the token's `sub`.")
        parser.add_argument(
            "--expires",
            default="1h",
            help="How long the token is valid: 30m, 12h, 7d, seconds, or 'never' (default 1h).",
        )

    def handle(self, *args, username: str, expires: str, **options) -> None:
        expires_s = parse_expires(expires)
        user_model = get_user_model()
        found = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if found is None:
            raise CommandError(
                f"No user {username!r}: create it first (manage.py createsuperuser)."
            )
        if not found.is_active:
            raise CommandError(f"User {username!r} is inactive: its token would act as nobody.")
        self.stdout.write(client_token(username, expires_s))
