"""Applying resource controls to a launch: look the wrappers up once, warn once, never block a launch.

`protocols.config` decides (the profile's settings, the wrapper argv, the environment); this module does the
part that touches the machine — finding `nice` and `ionice` on PATH — and records what applied, so that the
instance can carry its resource profile. A missing wrapper is a one-time warning (logged and returned as a
note for the audit log), and the agent starts anyway without it.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence

import msgspec

from protocols.config import ResourceSettings, agent_environment, wrapper_argv

__all__ = ["Launch", "ResourceControls"]

log = logging.getLogger(__name__)


class Launch(msgspec.Struct, frozen=True):
    """A command ready to start: wrapped argv, full environment, and what was applied."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    resource_profile: str
    notes: tuple[str, ...] = ()  # one-time warnings, for the audit log


class ResourceControls:
    """Wraps agent launches with nice/ionice and build-env hints. Thread-safe; one per daemon."""

    def __init__(
        self, settings: ResourceSettings, *, path: str | None = None, platform: str = sys.platform
    ) -> None:
        self.settings = settings
        self._is_linux = platform.startswith("linux")
        self._nice = shutil.which("nice", path=path) is not None
        self._ionice = self._is_linux and shutil.which("ionice", path=path) is not None
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def _missing(self) -> list[str]:
        missing = []
        if self.settings.nice > 0 and not self._nice:
            missing.append("nice")
        if self._is_linux and self.settings.ionice_class not in ("", "none") and not self._ionice:
            missing.append("ionice")
        return missing

    def launch(
        self, argv: Sequence[str], base_env: Mapping[str, str], extra_env: Mapping[str, str]
    ) -> Launch:
        """Wrap `argv` and build its environment: base, then build hints where unset, then [resources.env],
        then `extra_env` (corral's own CORRAL_* variables, which config may not override)."""
        notes = []
        with self._lock:
            for tool in self._missing():
                if tool not in self._warned:
                    self._warned.add(tool)
                    note = (
                        f"resource profile {self.settings.profile!r}: {tool} not found on PATH; agents start "
                        f"without it (install util-linux / coreutils to apply it)"
                    )
                    log.warning(note)
                    notes.append(note)
        prefix = wrapper_argv(self.settings, self._nice, self._ionice, self._is_linux)
        env = agent_environment(base_env, self.settings)
        env.update(extra_env)
        env["CORRAL_RESOURCE_PROFILE"] = self.settings.profile
        return Launch(
            argv=(*prefix, *argv),
            env=tuple(env.items()),
            resource_profile=self.settings.profile,
            notes=tuple(notes),
        )
