"""System checks: eventing.E001… for settings Eventing cannot work with."""

from __future__ import annotations

import hmac
import sqlite3

from celery import current_app
from django.apps import apps
from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, router
from django.utils.module_loading import import_string

from eventing import owners
from eventing.api import jwks
from eventing.capture import database as capture_db
from eventing.capture.storage import configuration_errors
from eventing.conf import SettingValueError, get_settings
from eventing.ops import health
from eventing.router import ROUTED_APPS, EventingRouter
from eventing.webhooks.request import WebhookConfigError, resolve_env
from eventing.webhooks.signing import (
    DEVELOPMENT_SIGNING_SECRET,
    private_signing_key,
    public_key,
)
from eventing.webhooks.ssrf import url_warning
from triggers.defaults import env_readable
from triggers.models import Trigger
from triggers.validation import ENV_PLACEHOLDER_RE

MIN_SECRET_LENGTH = 32
# The first SQLite with UPDATE … RETURNING, which claiming and finishing events needs.
MIN_SQLITE_VERSION = (3, 35)
SUPPORTED_DOCS_HINT = (
    "Keep the event tables on PostgreSQL (production) or SQLite 3.35+ (one machine); your "
    "own data may stay where it is (docs/integration.md, 'Supported databases')."
)


# A key whose value its rule refuses is E004, except where an older check gave it its own id.
VALUE_ERROR_IDS = {
    "ALLOWED_NETWORKS": "eventing.E003",
    "SIGNING_KEY": "eventing.E006",
    "CLIENT_PUBLIC_KEYS": "eventing.E006",
    "CLIENT_JWKS_URLS": "eventing.E006",
    "CAPTURE": "eventing.E009",
}


@register(Tags.security)
def check_settings(app_configs=None, **kwargs):
    """EVENTING must parse, and hold at least one strong secret."""
    try:
        conf = get_settings()
    except SettingValueError as exc:
        return [Error(str(exc), id=VALUE_ERROR_IDS.get(exc.key, "eventing.E004"))]
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="eventing.E001", hint="Fix settings.EVENTING.")]
    problems = []
    secrets = conf.SECRETS
    if (not isinstance(secrets, (list, tuple)) or not secrets) and not conf.SIGNING_KEY:
        problems.append(
            Error(
                'EVENTING["SECRETS"] is empty: webhooks cannot be signed.',
                hint="Set EVENTING_SECRETS (comma-separated) or EVENTING['SECRETS'] to a list of "
                "random strings of 32 characters or more.",
                id="eventing.E002",
            )
        )
    elif any(not isinstance(s, str) or len(s) < MIN_SECRET_LENGTH for s in secrets):
        problems.append(
            Warning(
                f'A secret in EVENTING["SECRETS"] is shorter than {MIN_SECRET_LENGTH} characters.',
                hint="Use long random secrets, e.g. python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'.",
                id="eventing.W001",
            )
        )
    return problems


@register(Tags.security)
def check_keys(app_configs=None, **kwargs):
    """Signing and client keys kept apart (W005), no public development secret in production
    (E005), and key material that parses (E006)."""
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # reported by check_settings
    problems = []
    signing = [s for s in conf.SECRETS or [] if isinstance(s, str)]
    client = [s for s in conf.CLIENT_SECRETS or [] if isinstance(s, str)]
    if any(hmac.compare_digest(c.encode(), s.encode()) for c in client for s in signing):
        problems.append(
            Warning(
                'A secret is in both EVENTING["CLIENT_SECRETS"] and EVENTING["SECRETS"]: every '
                "webhook receiver holds the signing secrets and could sign API tokens as any "
                "user.",
                hint="Give clients their own secret (see docs/migrating.md for a Space Cloud "
                "project secret).",
                id="eventing.W005",
            )
        )
    if not django_settings.DEBUG:
        for name, values in (("SECRETS", signing), ("CLIENT_SECRETS", client)):
            if DEVELOPMENT_SIGNING_SECRET in values:
                problems.append(
                    Error(
                        f'EVENTING["{name}"] holds the repository\'s public development secret '
                        "while DEBUG is off: anyone can sign with it.",
                        hint="Set EVENTING_SECRETS / EVENTING_CLIENT_SECRETS to random strings, "
                        "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'.",
                        id="eventing.E005",
                    )
                )
    try:
        if conf.SIGNING_KEY:
            private_signing_key(conf.SIGNING_KEY)
    except ImproperlyConfigured as exc:
        problems.append(Error(str(exc), hint="See docs/receiving.md.", id="eventing.E006"))
    # Lists of strings (eventing.conf.RULES): check_settings reports any other shape.
    urls = conf.CLIENT_JWKS_URLS
    jwks_urls = [(f'EVENTING["CLIENT_JWKS_URLS"][{index}]', url) for index, url in enumerate(urls)]
    for index, pem in enumerate(conf.CLIENT_PUBLIC_KEYS):
        where = f'EVENTING["CLIENT_PUBLIC_KEYS"][{index}]'
        if pem.strip().lower().startswith(("http://", "https://")):
            jwks_urls.append((where, pem.strip()))  # a JWKS URL, as in CLIENT_JWKS_URLS
            continue
        try:
            public_key(pem)
        except ImproperlyConfigured as exc:
            problems.append(Error(f"{where}: {exc}", id="eventing.E006"))
    for where, url in jwks_urls:
        problem = jwks.url_problem(url)
        if problem:
            problems.append(
                Error(
                    f"{where} {problem}.",
                    hint="The URL of the token issuer's JWKS, e.g. "
                    "https://issuer.example.com/.well-known/jwks.json.",
                    id="eventing.E006",
                )
            )
            continue
        warning = url_warning(url)
        if warning:
            problems.append(Warning(f"{where}: {warning}", id="eventing.W007"))
    return problems


@register(Tags.database)
def check_events_database(app_configs=None, **kwargs):
    """A separate EVENTING["DATABASE"] must be in DATABASES and routed to (E007)."""
    try:
        alias = get_settings().DATABASE
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if alias == "default":
        return []  # everything goes to "default" with or without the router
    problems = []
    if alias not in django_settings.DATABASES:
        problems.append(
            Error(
                f'EVENTING["DATABASE"] is {alias!r}, which is not in DATABASES.',
                hint="Add the alias to DATABASES, or leave EVENTING['DATABASE'] at 'default'.",
                id="eventing.E007",
            )
        )
    if not any(_is_eventing_router(r) for r in router.routers):
        problems.append(
            Error(
                f'EVENTING["DATABASE"] is {alias!r} but eventing.router.EventingRouter is not '
                "in DATABASE_ROUTERS: new triggers would be saved, and the event tables "
                'migrated, in "default".',
                hint='Add "eventing.router.EventingRouter" to DATABASE_ROUTERS.',
                id="eventing.E007",
            )
        )
        return problems
    misrouted = sorted(
        f"{model._meta.label} to {found!r}"
        for label in ROUTED_APPS
        for model in apps.get_app_config(label).get_models()
        for found in {router.db_for_read(model), router.db_for_write(model)} - {alias}
    )
    if misrouted:
        problems.append(
            Error(
                f'DATABASE_ROUTERS send {", ".join(misrouted)}, not to EVENTING["DATABASE"] '
                f"({alias!r}): a router listed before eventing.router.EventingRouter answers "
                "for them.",
                hint="List eventing.router.EventingRouter first, or have the earlier router "
                "return None for the triggers and eventing apps.",
                id="eventing.E007",
            )
        )
    return problems


def _is_eventing_router(entry) -> bool:
    """Whether a loaded DATABASE_ROUTERS entry (an instance, or a class given as is) is ours."""
    return isinstance(entry, EventingRouter) or (
        isinstance(entry, type) and issubclass(entry, EventingRouter)
    )


@register(Tags.database)
def check_database_features(app_configs=None, **kwargs):
    """The events database must run the hot path's UPDATE … RETURNING (E008)."""
    try:
        alias = get_settings().DATABASE
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if alias not in django_settings.DATABASES:
        return []  # reported by check_events_database
    vendor = connections[alias].vendor  # the backend's class attribute: no connection opened
    if vendor == "postgresql":
        return []
    if vendor == "sqlite":
        if sqlite3.sqlite_version_info >= MIN_SQLITE_VERSION:
            return []
        what = f"SQLite {sqlite3.sqlite_version}, older than 3.35"
    else:
        # MariaDB has RETURNING on INSERT and DELETE only, MySQL none; Oracle's RETURNING …
        # INTO fills bind variables instead of returning rows.
        what = {"mysql": "MySQL or MariaDB", "oracle": "Oracle"}.get(vendor, f"a {vendor} database")
    return [
        Error(
            f'EVENTING["DATABASE"] ({alias!r}) is {what}: Eventing claims and finishes events '
            "with UPDATE … RETURNING, which it does not have.",
            hint=SUPPORTED_DOCS_HINT,
            id="eventing.E008",
        )
    ]


@register(Tags.compatibility, deploy=True)
def check_broker(app_configs=None, **kwargs):
    """The Celery broker must answer (checked with `check --deploy`; /healthz asks the same)."""
    probe = health.check_broker()
    if probe["ok"]:
        return []
    return [
        Warning(
            f"The Celery broker cannot be reached: {probe['error']}",
            hint="Start the broker or fix CELERY_BROKER_URL; events are kept and sent when it "
            "returns.",
            id="eventing.W002",
        )
    ]


@register(Tags.compatibility)
def check_storages(app_configs=None, **kwargs):
    """Every EventingStorage in STORAGES must be buildable (else uploads fail, not startup)."""
    return [
        Error(problem, hint="See docs/storage.md.", id="eventing.E010")
        for problem in configuration_errors()
    ]


# Database checks run only where databases are checked (`check --database`, migrate): Django
# passes `databases` there and None elsewhere, so runserver and a plain check never query.
@register(Tags.security, Tags.database)
def check_trigger_urls(app_configs=None, databases=None, **kwargs):
    """Enabled triggers whose URL resolves to an address the SSRF guard refuses (W003)."""
    if not databases:
        return []
    problems = []
    try:
        triggers = list(Trigger.objects.filter(enabled=True).values_list("name", "url"))
    except DatabaseError:
        return []  # not migrated yet (migrate runs the checks before it creates the table)
    for name, url in triggers:
        try:
            resolved = resolve_env(url, "url")
        except WebhookConfigError:
            continue  # its deliveries report the missing variable themselves
        warning = url_warning(resolved)
        if warning:
            problems.append(
                Warning(
                    f"Trigger {name}: {warning}",
                    hint="Point it at a public address, or add its network to "
                    "EVENTING['ALLOWED_NETWORKS'] if it is meant to be internal.",
                    id="eventing.W003",
                )
            )
    return problems


@register(Tags.security, Tags.database)
def check_trigger_env(app_configs=None, databases=None, **kwargs):
    """Stored triggers reading environment variables outside TRIGGER_ENV (W009).

    Triggers saved before EVENTING["TRIGGER_ENV"] existed may name any variable; their
    deliveries now fail, so an upgrade should say which triggers to fix.
    """
    if not databases:
        return []
    try:
        triggers = list(Trigger.objects.values_list("name", "url", "headers"))
    except DatabaseError:
        return []  # not migrated yet
    problems = []
    for name, url, headers in triggers:
        names = ENV_PLACEHOLDER_RE.findall(url or "")
        names += [h.get("value_from_env") for h in headers or [] if isinstance(h, dict)]
        refused = sorted({env for env in names if env and not env_readable(env)})
        if refused:
            problems.append(
                Warning(
                    f"Trigger {name} reads environment variables outside "
                    f"EVENTING['TRIGGER_ENV']: {', '.join(refused)}; its deliveries fail.",
                    hint="Rename the variables to match TRIGGER_ENV (HOOK_* by default) or "
                    "add a pattern for them to EVENTING['TRIGGER_ENV'].",
                    id="eventing.W009",
                )
            )
    return problems


@register(Tags.compatibility)
def check_eta_horizon(app_configs=None, **kwargs):
    """ETA messages must not outlive Redis' (or SQS') visibility timeout (W004)."""
    try:
        horizon = get_settings().ETA_HORIZON_S
    except ImproperlyConfigured:
        return []  # reported by check_settings
    options = current_app.conf.broker_transport_options or {}
    timeout = options.get("visibility_timeout")
    if timeout is None or horizon < timeout:
        return []
    return [
        Warning(
            f"EVENTING['ETA_HORIZON_S'] ({horizon:g} s) is not below the broker's "
            f"visibility_timeout ({timeout} s): scheduled messages will be handed out again "
            "while they wait. Deliveries stay exactly-once (the row is claimed atomically), "
            "but every copy costs a task.",
            hint="Lower EVENTING['ETA_HORIZON_S'] or raise visibility_timeout "
            "(CELERY_VISIBILITY_TIMEOUT).",
            id="eventing.W004",
        )
    ]


@register(Tags.compatibility)
def check_capture_mode(app_configs=None, **kwargs):
    """EVENTING["CAPTURE"] must name a mode the events database supports (E009)."""
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # reported by check_settings
    # An unknown mode never gets here: its rule refuses it (check_settings, still E009).
    vendor = connections[conf.DATABASE].vendor
    if conf.CAPTURE == capture_db.DATABASE and vendor != "postgresql":
        return [
            Error(
                f'EVENTING["CAPTURE"] = "database" needs PostgreSQL; the events database '
                f"{conf.DATABASE!r} is {vendor}. DB events are captured by signals meanwhile.",
                hint='Use CAPTURE = "signals" (the default), or put the events database on '
                "PostgreSQL.",
                id="eventing.E009",
            )
        ]
    return []


@register(Tags.database)
def check_capture_functions(app_configs=None, **kwargs):
    """Trigger functions missing, stale or left over (W006); run `eventing_capture sync`.

    Reads the catalog of the events database when it is PostgreSQL, on every check run (as
    W003 reads triggers): an operator sees the problem at `check`, `migrate` and `runserver`.
    """
    try:
        lines = capture_db.capture_status()
    except (DatabaseError, ImproperlyConfigured):
        return []  # not migrated yet, or reported by check_settings
    return [
        Warning(
            f"Capture function for {line.table}"
            + (f" ({line.kind})" if line.kind else "")
            + f" is {line.state}: {line.detail}.",
            hint="Run `manage.py eventing_capture sync` (`status` lists every table).",
            id="eventing.W006",
        )
        for line in lines
        if not line.ok and line.state != capture_db.BROKEN
    ]


@register(Tags.database)
def check_trigger_fields(app_configs=None, **kwargs):
    """A DB trigger names a field its model no longer has (E011): it silently records nothing."""
    try:
        lines = capture_db.broken_lines(get_settings().DATABASE)
    except (DatabaseError, ImproperlyConfigured):
        return []  # not migrated yet, or reported by check_settings
    return [
        Error(
            f"{line.detail}.",
            hint="Edit the trigger's field names (Mission Control or the API); see "
            "docs/operations.md, 'A renamed field'.",
            obj=line.triggers[0],
            id="eventing.E011",
        )
        for line in lines
    ]


# Cache backends that count in one process only: behind several web processes (gunicorn
# workers), each would grant a throttle's whole rate.
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches)
def check_throttle_cache(app_configs=None, **kwargs):
    """API throttle rates counted in a process-local (or missing) cache (W008)."""
    try:
        conf = get_settings()
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if not any((conf.THROTTLE_RATES or {}).values()):
        return []
    alias = conf.THROTTLE_CACHE
    backend = (getattr(django_settings, "CACHES", {}).get(alias) or {}).get("BACKEND")
    if backend and backend not in PROCESS_LOCAL_CACHES:
        return []
    where = f"is {backend.rsplit('.', 1)[-1]}, local to each process" if backend else "is not set"
    return [
        Warning(
            f'EVENTING["THROTTLE_RATES"] counts in the cache {alias!r}, which {where}: every '
            "web process grants the whole rate.",
            hint="Point EVENTING['THROTTLE_CACHE'] at a shared cache: Redis "
            "(django.core.cache.backends.redis.RedisCache) or the database cache "
            "(django.core.cache.backends.db.DatabaseCache, then `manage.py createcachetable`).",
            id="eventing.W008",
        )
    ]


@register(Tags.models)
def check_owners(app_configs=None, **kwargs):
    """OWNER_MODEL names an installed model, OWNER_RESOLVER imports and fits it (E020-E022)."""
    try:
        get_settings()
    except ImproperlyConfigured:
        return []  # check_settings reports it
    errors = []
    try:
        owners.owner_model()
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="eventing.E020"))
    try:
        import_string(get_settings().OWNER_RESOLVER)
    except ImportError as exc:
        errors.append(
            Error(
                f'EVENTING["OWNER_RESOLVER"] cannot be imported: {exc}',
                hint="A dotted path to a function (request) -> owner or None.",
                id="eventing.E021",
            )
        )
    # The default resolver returns the request's user: with another owner model it would hand
    # every owner-facing view a user where an owner is expected.
    label = get_settings().OWNER_MODEL
    if (
        label
        and label.lower() != django_settings.AUTH_USER_MODEL.lower()
        and get_settings().OWNER_RESOLVER == owners.DEFAULT_RESOLVER
    ):
        errors.append(
            Error(
                f'EVENTING["OWNER_MODEL"] is {label!r} but EVENTING["OWNER_RESOLVER"] is the '
                "default, which returns the request's user.",
                hint="Set OWNER_RESOLVER to a function (request) -> the "
                f"{label} the request acts for, or None.",
                id="eventing.E022",
            )
        )
    return errors
