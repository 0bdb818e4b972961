"""Where rcm keeps its files (``RCM_HOME``: code-set caches, jars, the local stack), read
without the settings machinery.

``shared.settings.RuntimeSettings.home`` is the setting; loading pydantic-settings (and the
asyncio and ssl it imports) costs about 0.2 s, which a short offline command such as
`rcm code` would pay for this one path. This reads the variable as pydantic-settings does
(the name in any case, the value as a path) and a unit test holds the two equal.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    return Path.home() / ".cache" / "rcm"


def rcm_home() -> Path:
    """``RCM_HOME`` (case-insensitive, as the settings read it), else ``~/.cache/rcm``."""
    for name, value in os.environ.items():
        if name.upper() == "RCM_HOME":
            return Path(value)
    return default_home()
