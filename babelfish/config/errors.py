"""The one error settings raise (its own module: the settings and the hardware rules both need it)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Settings that cannot work: credentials or a package a chosen engine needs are missing (raised at
    startup, never mid-call). The message names the setting to fix."""
