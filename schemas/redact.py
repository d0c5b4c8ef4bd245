"""Text made safe to show or store: credentials in URLs masked, control characters escaped. Pure.

One function for each, used by every package (``infra`` for settings, logs and error texts; the
codec for registry errors; ``DeadLetter`` reasons; the projection's free-text columns), so a
secret or a terminal escape is handled the same way wherever it would surface.
"""

from __future__ import annotations

import re

MASK = "****"

# scheme://user:password@ -- the password may hold ':' or '@' unencoded; it ends at the last '@'
# before the path. Query parameters that carry secrets (clickhouse-connect reads ?password=).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+._-]*://[^:/?#@\s]*:)[^/?#\s]*(?=@)")
_BARE_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+._-]*://)[^:/?#@\s]+(?=@)")  # a token as the user
_SECRET_PARAM = re.compile(r"(?P<head>[?&](?:password|passwd|pwd|secret|token|access_token|api_key|apikey)=)[^&#\s]*",
                           re.IGNORECASE)

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_ESCAPE_ALL = {c: _NAMED.get(chr(c), f"\\x{c:02x}") for c in _CONTROLS}
_ESCAPE_KEEP_LINES = {c: e for c, e in _ESCAPE_ALL.items() if chr(c) not in "\n\t"}


def mask_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@``, a lone ``scheme://token@``
    and every secret query parameter replaced by ``****`` (user names and hosts stay)."""
    if "://" not in text and "=" not in text:
        return text
    # A function, not a template: a template is compiled on first use, by an import that fails
    # when a record is logged while the interpreter shuts down.
    text = _BARE_USERINFO.sub(_masked, _USERINFO.sub(_masked, text))
    return _SECRET_PARAM.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    return match.group("head") + MASK


def escape_controls(text: str, keep_lines: bool = False) -> str:
    """Control characters (C0, DEL, C1) as ``\\x1b``, ``\\n``...: a terminal shows them as text
    and they cannot forge a log line. ``keep_lines`` keeps newlines and tabs (tracebacks)."""
    return text.translate(_ESCAPE_KEEP_LINES if keep_lines else _ESCAPE_ALL)


def redact(text: str) -> str:
    """Both, for free text on its way to a topic, a table or a terminal (dead-letter reasons,
    failure reasons): credentials masked, control characters escaped, newlines included."""
    return escape_controls(mask_urls(text))
