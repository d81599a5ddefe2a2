"""DATABASE_URL → Django DATABASES entry (PostgreSQL via psycopg 3, or SQLite)."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from studio.env import ConfigError, env_bool, env_int


def database_from_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ConfigError("DATABASE_URL must name a database, e.g. postgres://host/studio.")
        # DATABASE_POOL (psycopg-pool) is for web processes: each request in flight runs in a
        # thread that holds a connection of its own (studio/asgi.py), and the pool caps them
        # however many requests arrive at once. Off by default: a connection taken in a
        # thread that ends without closing it never goes back to the pool, and Celery
        # workers and tools keep persistent connections instead. Pooling needs CONN_MAX_AGE 0.
        pool = env_bool("DATABASE_POOL", False)
        size = {"min_size": 2, "max_size": env_int("DATABASE_POOL_MAX", 20, minimum=2)}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 0 if pool else 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {**({"pool": size} if pool else {}), **dict(parse_qsl(parts.query))},
        }
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path) or ":memory:"}
    raise ConfigError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (use postgres://).")
