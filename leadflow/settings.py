"""LeadFlow settings, read from the environment (django-environ).

Defaults serve the quick start (`make run`): SQLite in WAL mode, a real Celery
worker over kombu's filesystem transport in var/, mail written to var/mail.
Production values have no unsafe default once DJANGO_DEBUG is off.
"""

import contextlib
from pathlib import Path

from celery.schedules import crontab
from csp.constants import NONE, SELF

from leadflow.core.envconfig import HTTP_SCHEMES, REDIS_SCHEMES, Env

BASE_DIR = Path(__file__).resolve().parent.parent

# Empty values mean "use the default" (except where empty is documented to mean
# "off"); a malformed one stops the process with a line naming the variable.
env = Env(keep_empty=frozenset({"LEADS_CAPTURE_RATE_LIMIT"}))
env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = Path(env.str("LEADFLOW_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="django-insecure-quick-start-only")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_filters",
    "django_htmx",
    "template_partials",
    "accounts",
    "leads",
    "scoring",
    "pipeline",
    "nurture",
    "reports",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "leadflow.core.badinput.BadQueryMiddleware",
    "leadflow.middleware.TenantMiddleware",
    "leadflow.core.dbfaults.DatabaseUnavailableMiddleware",  # a database fault is a 503
]

ROOT_URLCONF = "leadflow.urls"
WSGI_APPLICATION = "leadflow.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.tenancy",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE takes the
    # write lock up front so two processes never deadlock on an upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django's own cursors bind values client-side and never prepare; the few
    # statements sent through leadflow.core.server_prepared are prepared on
    # their first run (psycopg's threshold; None turns that off).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 0)
# Past one machine (docs/scaling.md): report pages may read from a PostgreSQL
# replica (leadflow/core/dbrouter.py; writes never go there), and behind PgBouncer in
# transaction pooling mode server-side cursors and prepared statements are off
# (they live in a session).
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"].update(
        CONN_MAX_AGE=DATABASES["default"].get("CONN_MAX_AGE", 0),
        CONN_HEALTH_CHECKS=True,
        TEST={"MIRROR": "default"},
    )
if env.bool("DATABASE_TRANSACTION_POOLING", default=False):
    for _database in DATABASES.values():
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True  # and prepared statements
        _database.setdefault("OPTIONS", {})["prepare_threshold"] = None
DATABASE_ROUTERS = ["leadflow.core.dbrouter.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, locks): Redis when available ----------------------
REDIS_URL = env.url_str("REDIS_URL", default="", schemes=REDIS_SCHEMES)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis outage costs a request at most this, never a hang (callers fail open).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    # Shared between the web server and the worker of the quick start.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Auth (allauth, email login) -------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
# "none" for the quick start; "mandatory" in production (a system check warns otherwise).
# An accepted invitation link counts as a confirmed address.
ACCOUNT_EMAIL_VERIFICATION = env.str(
    "ACCOUNT_EMAIL_VERIFICATION", default="none" if DEBUG else "mandatory"
)
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.SignupExtraForm"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Brute-force limits (accounts/login_limits.py): failed logins count per account
# *and* IP, so a neighbour behind the same NAT locks out nobody else; the login
# POST limit per IP is a flood guard only. /admin/login/ goes through this log-in.
ACCOUNT_RATE_LIMITS = {"login": "60/m/ip", "login_failed": "5/5m/key"}
LOGIN_FAILED_PER_ACCOUNT_RATE = "30/h/key"  # from any IP: a distributed guess at one account
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:home"
ACCOUNT_LOGOUT_REDIRECT_URL = "landing"
# Two-factor authentication (allauth.mfa): optional per user, required by an
# organization that turns on Organization.require_two_factor.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "LeadFlow"
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
# The public lead dataset seed_demo draws on (defaults to shared/data beside the repo).
DEMO_DATASET = env.str("DEMO_DATASET", default="")
# Absolute base for links in emails (invitations, unsubscribe, tracking).
SITE_URL = env.url_str("SITE_URL", default="http://127.0.0.1:8000", schemes=HTTP_SCHEMES)

# Behind a proxy, the header carrying the visitor's IP (e.g. HTTP_X_FORWARDED_FOR);
# hosted-form rate limits are per visitor IP.
LEADS_CLIENT_IP_HEADER = env.str("LEADS_CLIENT_IP_HEADER", default="")
# Hosted-form submissions per IP per form; empty turns the limit off.
LEADS_CAPTURE_RATE_LIMIT = env.str("LEADS_CAPTURE_RATE_LIMIT", default="10/m")
# Requests per API key (django-ratelimit rate syntax).
LEADFLOW_API_RATE_LIMIT = env.str("LEADFLOW_API_RATE_LIMIT", default="600/m")
# PostgreSQL: an API write waits at most this for a row lock / runs at most this long (503 after).
LEADFLOW_API_LOCK_TIMEOUT_MS = env.int("LEADFLOW_API_LOCK_TIMEOUT_MS", default=5000)
LEADFLOW_API_STATEMENT_TIMEOUT_MS = env.int("LEADFLOW_API_STATEMENT_TIMEOUT_MS", default=15000)

# --- Email -----------------------------------------------------------------
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="LeadFlow <noreply@leadflow.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ----------------------------------------------------------------
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 5 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 4 * 60
CELERY_TIMEZONE = "UTC"
# Queues (leadflow/core/queues.py): beat, capture, scoring, mail, webhooks, reports,
# imports, default; capture, mail and webhooks split by organization into
# CELERY_ORG_SHARDS queues. Workers run without -Q and so consume them all.
from leadflow.core import queues  # noqa: E402 (kept beside the settings it feeds)

CELERY_ORG_SHARDS = env.int("CELERY_ORG_SHARDS", default=4)
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
CELERY_TASK_QUEUES = queues.celery_queues(CELERY_ORG_SHARDS)
CELERY_TASK_ROUTES = ("leadflow.core.queues.route_task",)
CELERY_BEAT_SCHEDULE: dict = {
    # Accepted submissions whose processing task was lost (broker outage, killed
    # worker) get re-queued: often, so recovery takes well under a minute (one
    # indexed query when nothing is lost; see leads/services/capture.py).
    "leads-sweep-unprocessed-submissions": {
        "task": "leads.sweep_unprocessed_submissions",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # API answers kept for Idempotency-Key retries expire after a day.
    "accounts-purge-idempotency-keys": {
        "task": "accounts.purge_idempotency_keys",
        "schedule": crontab(minute=40),
    },
    # Engagement points decay with age: one tenant rescore per organization nightly.
    "scoring-nightly-decay": {
        "task": "scoring.nightly_decay",
        "schedule": crontab(hour=2, minute=30),
    },
    # Learned scoring: a new suggestion (never applied by itself) when one is due.
    "scoring-retrain-due": {
        "task": "scoring.retrain_due",
        "schedule": crontab(hour=3, minute=15),
    },
    # Speed-to-lead: find SLA breaches, notify, reassign or recycle (one job per org).
    "pipeline-sla-sweep": {
        "task": "pipeline.sla_sweep",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # A rep's tasks that came due: one "task due" notice each (one job per org).
    "pipeline-follow-ups-remind": {
        "task": "pipeline.follow_ups_remind_sweep",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Notification digests: each member's notices they want in a digest, hourly.
    "pipeline-notification-digests": {
        "task": "pipeline.notification_digests",
        "schedule": crontab(minute=0),
        "options": {"expires": 3000},
    },
    # Due nurture steps and due send retries: one dispatch per organization, each
    # within its throttle. Every 15 s, so that a retry waits at most that past
    # its backoff (NURTURE_RETRY_BASE_SECONDS below).
    "nurture-dispatch": {
        "task": "nurture.dispatch_all",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    # Dynamic lists with time-based conditions ("clicked in the last 30 days").
    "nurture-refresh-dynamic-lists": {
        "task": "nurture.refresh_dynamic_lists_all",
        "schedule": crontab(minute=15),
    },
    # Weekly KPI digest: hourly, each org sends on Monday from 07:00 its local time.
    "reports-weekly-digest": {
        "task": "reports.send_weekly_digests",
        "schedule": crontab(minute=5),
        "options": {"expires": 3000},
    },
    # Dashboard rollups: the days of leads changed since the last run, and a
    # full rebuild at night (deletions, edited deal amounts).
    "reports-refresh-rollups": {
        "task": "reports.refresh_all_rollups",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "reports-rebuild-rollups": {
        "task": "reports.refresh_all_rollups",
        "schedule": crontab(hour=3, minute=15),
        "kwargs": {"full": True},
    },
}
# Privacy retention: purge old raw submissions and junk leads where an org set it.
CELERY_BEAT_SCHEDULE["privacy-retention-purge"] = {
    "task": "privacy.retention_purge_all",
    "schedule": crontab(hour=4, minute=10),
}
# CSV imports: rows committed per chunk; a queued or running import that shows no
# sign of life for LEADS_IMPORT_STALE_SECONDS (worker killed, task lost) is resumed
# by a sweep every LEADS_IMPORT_SWEEP_SECONDS after its last committed chunk.
LEADS_IMPORT_CHUNK_ROWS = env.int("LEADS_IMPORT_CHUNK_ROWS", default=1000)
# A lead CSV export of more rows than this runs as a background job with a download link.
LEADS_EXPORT_SYNC_ROWS = env.int("LEADS_EXPORT_SYNC_ROWS", default=5000)
LEADS_IMPORT_STALE_SECONDS = env.int("LEADS_IMPORT_STALE_SECONDS", default=120)
# Leads whose duplicate refresh task was lost get their keys and pairs.
CELERY_BEAT_SCHEDULE["leads-sweep-duplicates"] = {
    "task": "leads.sweep_duplicates_all",
    "schedule": 600.0,
    "options": {"expires": 590},
}
CELERY_BEAT_SCHEDULE["leads-sweep-stale-imports"] = {
    "task": "leads.sweep_stale_imports",
    "schedule": env.float("LEADS_IMPORT_SWEEP_SECONDS", default=60.0),
    "options": {"expires": 55},
}
# Queued nurture emails whose send task was lost (a killed worker) are re-enqueued after this
# (longer than CELERY_TASK_TIME_LIMIT: a live send never looks lost).
NURTURE_REQUEUE_AFTER_SECONDS = env.int("NURTURE_REQUEUE_AFTER_SECONDS", default=600)
# Transient SMTP failures (refused, timeout, 4xx) are retried with a doubling backoff
# (base … max) for this long from when the email was queued, as mail servers do.
# base + the dispatch period <= 60 s: a first failure during an outage of up to
# 45 s is delivered within a minute of its end.
NURTURE_RETRY_FOR_SECONDS = env.int("NURTURE_RETRY_FOR_SECONDS", default=48 * 3600)
NURTURE_RETRY_BASE_SECONDS = env.int("NURTURE_RETRY_BASE_SECONDS", default=45)
NURTURE_RETRY_MAX_SECONDS = env.int("NURTURE_RETRY_MAX_SECONDS", default=3600)
NURTURE_SMTP_TIMEOUT_SECONDS = env.int("NURTURE_SMTP_TIMEOUT_SECONDS", default=30)
# Sender identity: the SPF include organizations add for our mail servers, and how
# long a from-address confirmation link stays valid.
SENDER_SPF_INCLUDE = env.str("SENDER_SPF_INCLUDE", default="spf.leadflow.localhost")
SENDER_VERIFY_MAX_AGE_DAYS = env.int("SENDER_VERIFY_MAX_AGE_DAYS", default=7)
# Replies to a rep's email: the domain of the per-organization reply address
# (reply-<x>+<thread>@domain), and how old a signed inbound webhook call may be.
INBOUND_MAIL_DOMAIN = env.str("INBOUND_MAIL_DOMAIN", default="inbound.leadflow.localhost")
INBOUND_MAIL_MAX_AGE_SECONDS = env.int("INBOUND_MAIL_MAX_AGE_SECONDS", default=300)
# Days between automatic re-learning for organizations that use learned scoring (0: off).
SCORING_RETRAIN_DAYS = env.int("SCORING_RETRAIN_DAYS", default=30)
# Stage-change webhooks: refuse private/loopback targets (SSRF) unless allowed.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=DEBUG)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Redis redelivers an unacked (acks_late) task after this long: it must be longer
# than any task's time limit (a 3-hour tenant rescore), or a task still running
# would be handed to a second worker (tests/reliability/test_visibility.py).
CELERY_VISIBILITY_TIMEOUT = 4 * 3600
# Hours during which a merge of two leads can be undone from its snapshot.
LEAD_MERGE_UNDO_HOURS = env.float("LEAD_MERGE_UNDO_HOURS", default=24.0)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Redelivery of unacked tasks after a worker dies: longer than any time limit.
    # A publish to an unreachable or hung broker fails within ~1 s instead of
    # retrying for ~6 s or hanging (the sweep re-enqueues what was not
    # published), so no visitor waits on it. Workers relax socket_timeout
    # (leadflow/celery.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        "max_retries": 0,
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
    }
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    # The filesystem transport has no fanout for remote control / mingle.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- i18n, static ----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

MESSAGE_TAGS = {40: "danger"}

# --- Security: strict whenever DEBUG is off ---------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Content-Security-Policy on every response (django-csp): scripts and styles come
# from our own static files only — no inline <script>, style="" or on*= handlers
# (tests/security/test_csp.py walks every page for them). data: images are
# Bootstrap's SVG icons in CSS and the TOTP QR code. frame-ancestors is left to
# X-Frame-Options, which hosted forms lift so customers can embed them.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        # No form-action: a hosted form redirects visitors to the customer's own
        # thank-you page after the POST, which form-action 'self' would block.
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# The quick start keeps all its state under var/; containers mount a volume there.
# A read-only image (production uses Redis and SMTP) simply skips this.
for _d in ("mail", "cache", "media", "broker/queue", "broker/control"):
    with contextlib.suppress(OSError):
        (VAR_DIR / _d).mkdir(parents=True, exist_ok=True)
