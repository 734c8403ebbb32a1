"""`manage.py eventing_listen`: a local receiver that verifies and prints deliveries."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from eventing.conf import settings
from eventing.webhooks.listen import Listener


class Command(BaseCommand):
    help = (
        "Receive webhook deliveries on a local port while you develop triggers (like "
        "`stripe listen`): each POST's X-SC-Token is checked against EVENTING['SECRETS'] and "
        "its webhook-signature against --secret or the secret of the trigger named in "
        "X-Eventing-Trigger; the delivery is printed, forged ones are answered 401 with the "
        "reason. Point a trigger's URL at http://127.0.0.1:<port>/ (loopback must be in "
        "EVENTING['ALLOWED_NETWORKS'], which `make run` sets)."
    )

    # A development tool: start at once, even while the project's checks would complain.
    requires_system_checks: list = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9000, help="Port (default 9000).")
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1)."
        )
        parser.add_argument(
            "--secret",
            default=None,
            metavar="WHSEC",
            help="Signing secret (whsec_…) to check webhook-signature with; default: the "
            "secret of the trigger named in X-Eventing-Trigger, from the database.",
        )
        parser.add_argument(
            "--reply-status",
            type=int,
            default=200,
            help="Status to answer verified deliveries with (e.g. 500 or 410 to try retries "
            "and pausing; default 200).",
        )

    def handle(
        self, *args, port: int, host: str, secret: str | None, reply_status: int, **options
    ) -> None:
        if not 100 <= reply_status <= 599:
            raise CommandError("--reply-status must be an HTTP status between 100 and 599.")
        if secret is not None and not secret.startswith("whsec_"):
            raise CommandError("--secret must be a Standard Webhooks secret (whsec_…).")
        if not settings.SECRETS:
            raise CommandError('EVENTING["SECRETS"] is empty: no X-SC-Token can be verified.')
        try:
            listener = Listener(
                host, port, out=self.stdout, signing_secret=secret, reply_status=reply_status
            )
        except OSError as exc:
            raise CommandError(f"--port: cannot listen on {host}:{port}: {exc}") from exc
        self.stdout.write(
            f"Listening on http://{host}:{listener.port}/ — point a trigger's URL here. "
            f"Answering verified deliveries {reply_status}, forged ones 401. Ctrl-C stops.",
        )
        self.stdout.flush()
        try:
            listener.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            listener.server.server_close()
        self.stdout.write("Stopped.")
