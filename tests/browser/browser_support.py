"""What the browser tests share besides fixtures."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BrowserLog:
    """What a page did that a test asserts on at its end: console errors, and requests that
    would have left the loopback interface (each refused)."""

    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
