"""The scoring configuration of an organization, cached for the single-lead path.

Scoring one lead must not reload the settings, rules and gates (three queries)
every time. The configuration is kept per organization in this process and in
the shared Django cache (Redis in production), tagged with the
`ScoringSettings.config_version` it was loaded under. Every write of rules,
groups, gates or settings calls `config_changed` in its own transaction, which
gives that version a new random value (never a count: a version a rolled-back
change used, perhaps cached meanwhile, is never used again); the single-lead
scoring statement only writes when the version it was given is still the
stored one (scoring.engine.apply), so a cached configuration — in any
process — can never score with old rules: a mismatch reloads the
configuration and scores again.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

from scoring.engine.rules import Config, load_config
from scoring.models import ScoringSettings, new_config_version

log = logging.getLogger(__name__)

CACHE_KEY = "scoring:config:{organization_id}"
CACHE_SECONDS = 24 * 3600
_MAX_LOCAL = 512  # organizations remembered per process

# organization id -> (config version, configuration), this process only.
_local: dict[int, tuple[int, Config]] = {}


def config_changed(*, organization_id: int) -> None:
    """Call in the transaction of any change to the organization's scoring
    configuration (rules, groups, gates, settings, post-qualification fields):
    every cached copy stops being used once it commits."""
    ScoringSettings.objects.get_or_create(organization_id=organization_id)
    ScoringSettings.objects.filter(organization_id=organization_id).update(
        config_version=new_config_version()
    )
    _local.pop(organization_id, None)


def _remember(organization_id: int, entry: tuple[int, Config]) -> None:
    if len(_local) >= _MAX_LOCAL and organization_id not in _local:
        _local.clear()
    _local[organization_id] = entry


def cached_config(*, organization_id: int, version: int | None = None) -> tuple[int, Config]:
    """(version, configuration) of the organization, from a cache when one holds
    it. With `version` (the stored one, when the caller has read it), only a copy
    of that version is used; without, the caller must check the version it gets
    against the stored one before writing anything scored with it."""
    entry = _local.get(organization_id)
    if entry is not None and (version is None or entry[0] == version):
        return entry
    key = CACHE_KEY.format(organization_id=organization_id)
    try:
        entry = cache.get(key)
    except Exception:  # the cache (Redis) is down: score from the database
        log.warning("Scoring config cache unavailable", exc_info=True)
        entry = None
    if entry is not None and (version is None or entry[0] == version):
        _remember(organization_id, entry)
        return entry
    return reload_config(organization_id=organization_id)


def reload_config(*, organization_id: int) -> tuple[int, Config]:
    """Load the configuration from the database and cache it under its version.

    The settings row (and with it the version) is read before the rules, so a
    copy is never tagged with a version newer than its rules."""
    config = load_config(organization_id=organization_id)
    entry = (config.settings.config_version, config)
    _remember(organization_id, entry)
    try:
        cache.set(CACHE_KEY.format(organization_id=organization_id), entry, CACHE_SECONDS)
    except Exception:
        log.warning("Scoring config cache unavailable", exc_info=True)
    return entry


def forget_local() -> None:
    """Drop this process's copies (tests simulate another process with it)."""
    _local.clear()
