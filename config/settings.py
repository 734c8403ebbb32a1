"""Settings of the standalone Eventing project, read from the environment."""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url

from eventing.dispatch.beat import beat_schedule
from eventing.webhooks.signing import DEVELOPMENT_SIGNING_SECRET

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EVENTING_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable as a list of non-empty items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# The fallback key only serves local runs; production sets SECRET_KEY (checked by `check --deploy`).
SECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-local-development-key-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here rather than a CDN
    "triggers",
    "eventing",
    "mission_control",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files under gunicorn (Mission Control's CSS and JS).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # DB events carry the request's user as `actor`.
    "eventing.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, the busy
    # timeout waits for the lock instead of failing, and IMMEDIATE takes the write lock at
    # BEGIN so two writers never deadlock upgrading a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    if os.environ.get("EVENTING_TEST_SQLITE_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["EVENTING_TEST_SQLITE_NAME"]}

DATABASE_ROUTERS = ["eventing.router.EventingRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
# The default storage emits FILE_CREATE / FILE_DELETE: FILE triggers name the alias "default".
STORAGES = {
    "default": {
        "BACKEND": "eventing.storage.EventingStorage",
        "OPTIONS": {
            "backend": "django.core.files.storage.FileSystemStorage",
            "options": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Eventing API",
    "DESCRIPTION": "Queue custom events, inspect deliveries and manage triggers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page loads Swagger UI from our own static files, never a third-party script.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


def local_secret(name: str) -> list[str]:
    """The secret `make run` generated into var/<name> for local runs ([] when there is none)."""
    path = VAR_DIR / name
    return [path.read_text().strip()] if path.exists() else []


EVENTING = {
    # Signs webhooks only (receivers hold it). Without EVENTING_SECRETS: the one `make run`
    # generated, else the repository's development secret (eventing.webhooks.signing
    # .DEVELOPMENT_SIGNING_SECRET), which a system check refuses with DEBUG off.
    "SECRETS": env_list("EVENTING_SECRETS")
    or local_secret("signing-secret.txt")
    or [DEVELOPMENT_SIGNING_SECRET],
    # Verifies API bearer tokens; never the same as SECRETS. Empty: bearer JWTs are refused
    # (DRF tokens and sessions still work).
    "CLIENT_SECRETS": env_list("EVENTING_CLIENT_SECRETS") or local_secret("client-secret.txt"),
    "INSTANCE_ID": os.environ.get("EVENTING_INSTANCE_ID", "eventing"),
    "ALLOWED_NETWORKS": env_list("EVENTING_ALLOWED_NETWORKS"),
}
if os.environ.get("EVENTING_WORKER_METRICS_PORT"):
    EVENTING["WORKER_METRICS_PORT"] = int(os.environ["EVENTING_WORKER_METRICS_PORT"])
EVENTING["METRICS_TOKEN"] = os.environ.get("EVENTING_METRICS_TOKEN", "")
# "signals" (default) or "database": PostgreSQL trigger functions capture every write.
EVENTING["CAPTURE"] = os.environ.get("EVENTING_CAPTURE", "signals")
EVENTING["SWEEP_INTERVAL_S"] = float(os.environ.get("EVENTING_SWEEP_INTERVAL_S", "1"))

# Celery: the embedded default is kombu's filesystem transport, so one machine needs no server.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    # kombu's filesystem transport, writing each message whole before a worker can pick it up.
    CELERY_BROKER_TRANSPORT = "eventing.dispatch.broker:FilesystemTransport"
else:
    # ETA messages never outlive this: EVENTING["ETA_HORIZON_S"] (300 s) is far below it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
    }
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport with one client per channel instead of one per command.
    CELERY_BROKER_TRANSPORT = "eventing.dispatch.broker:RedisTransport"


def shared_cache_url() -> str:
    """CACHE_URL, else the broker's Redis server on its next database, else "" (no Redis)."""
    if os.environ.get("CACHE_URL"):
        return os.environ["CACHE_URL"]
    if not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return ""
    parts = urlsplit(CELERY_BROKER_URL)
    broker_db = int(parts.path.strip("/") or 0)
    # Not the broker's own database: clearing the cache must never drop queued messages.
    return urlunsplit(parts._replace(path=f"/{broker_db + 1}"))


# Every web process must see the same cache: API throttles count in it (a process-local cache
# lets each gunicorn worker grant the whole rate). Redis when there is one, else a table in the
# database (`manage.py createcachetable`, which `make run` and the compose file run).
CACHE_URL = shared_cache_url()
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "eventing_cache",
        }
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A message is acknowledged only after its task ran, and given back if the worker dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_WORKER_PREFETCH_MULTIPLIER", "4"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection around every task unless this is set,
# which costs a new connection per delivery. Eventing closes stale or broken connections itself
# after each task (django.db.close_old_connections, honouring CONN_MAX_AGE).
CELERY_DB_REUSE_MAX = 1_000_000
# The sweeper every EVENTING["SWEEP_INTERVAL_S"] (read when beat starts), the cleanup daily.
CELERY_BEAT_SCHEDULE = beat_schedule()
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# LOG_FORMAT=json writes one JSON object per line; both formats carry event_id and trigger.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "event_context": {"()": "eventing.ops.logs.EventContextFilter"},
        # Celery's received / succeeded / sending lines of the one-second sweep: DEBUG.
        "quiet_sweeps": {"()": "eventing.ops.logs.QuietSweepsFilter"},
    },
    "formatters": {
        "plain": {
            "()": "eventing.ops.logs.KeyValueFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "eventing.ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["event_context", "quiet_sweeps"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
