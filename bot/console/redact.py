"""The configuration as the console shows it: every key, no secret.

Secrets live in the environment, not the settings, but two can hide in a setting all the same:
a password in `[store] url`, and anything a user put under a key named like a secret.
"""

from __future__ import annotations

from typing import Any

from bot.config import Settings

_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey")


def _url_without_password(url: str) -> str:
    if not url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


def _scrub(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, key) for v in value]
    lowered = key.lower()
    secret_name = any(w in lowered for w in _SECRET_WORDS)
    # the *name* of an environment variable (`api_key_env`) is no secret
    if isinstance(value, str) and value and secret_name and not lowered.endswith("_env"):
        return "***"
    return value


def redacted_config(settings: Settings) -> dict[str, Any]:
    data = _scrub(settings.to_toml_dict())
    data["store"]["url"] = _url_without_password(settings.store.url)
    return data
