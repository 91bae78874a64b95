"""Bearer tokens with scopes, stored as hashes.

``create`` returns a token once; the file keeps only its SHA-256 (a token is 256 random bits,
so a plain hash cannot be reversed or guessed, and no salt or slow hash is needed). The file is
written atomically, private to its owner, like the rest of a workspace. A server reads it again
when it changes, so a token created or revoked while it runs counts at the next request. Tokens are
compared in constant time and never appear in a message or a log line: only their names do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from agent_il.errors import InvalidInputError, WorkspaceError
from agent_il.storage import atomic

TOKENS_FILE = "tokens.json"  # in a workspace directory
PREFIX = "ail_"  # marks an agent-il token (in a config file, a secret scanner's rule)
SCOPES = ("read", "learn", "admin")  # each includes the ones before it
FORMAT_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None


def scope_allows(held: str, needed: str) -> bool:
    """Whether a token of scope ``held`` may do what needs ``needed``: admin > learn > read."""
    return SCOPES.index(held) >= SCOPES.index(needed)


def check_scope(value: object) -> str:
    if value not in SCOPES:
        raise InvalidInputError(f"scope must be one of {', '.join(SCOPES)}, got {value!r}")
    return str(value)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A stored token: its name, scope, when it was made, and the hash of the secret."""

    name: str
    scope: str
    created: str
    sha256: str

    def public(self) -> dict[str, str]:
        """What ``token list`` shows: everything but the hash."""
        return {"name": self.name, "scope": self.scope, "created": self.created}


class TokenStore:
    """The tokens in one JSON file (``tokens.json`` in a workspace, or any ``--tokens FILE``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of what _tokens holds
        self._tokens: list[TokenInfo] = []

    # ------------------------------------------------------------------ reading
    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def tokens(self) -> list[TokenInfo]:
        """The stored tokens, read again only when the file changed."""
        with self._lock:
            seen = self._stat()
            if seen != self._seen:
                self._tokens = self._read() if seen is not None else []
                self._seen = seen
            return list(self._tokens)

    def _read(self) -> list[TokenInfo]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"not a version {FORMAT_VERSION} token file")
            out = [TokenInfo(**{k: str(t[k]) for k in ("name", "scope", "created", "sha256")}) for t in doc["tokens"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise WorkspaceError(f"{self.path}: damaged token file ({exc})") from None
        return out

    def verify(self, token: str) -> TokenInfo | None:
        """The stored token ``token`` is, or None. Every stored hash is compared, in constant time."""
        if not isinstance(token, str) or not token:
            return None
        digest = _digest(token)
        found = None
        for info in self.tokens():
            if hmac.compare_digest(info.sha256, digest):
                found = info
        return found

    # ------------------------------------------------------------------ writing
    def create(self, name: str, scope: str) -> str:
        """Store a new token ``name`` of ``scope`` and return the token itself: the only time it is shown."""
        name = _name(name)
        scope = check_scope(scope)
        with self._lock:
            tokens = self._read() if self.path.exists() else []
            if any(t.name == name for t in tokens):
                raise InvalidInputError(f"a token named {name!r} exists; revoke it first or choose another name")
            token = PREFIX + secrets.token_urlsafe(32)
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self._write([*tokens, TokenInfo(name, scope, created, _digest(token))])
        return token

    def revoke(self, name: str) -> TokenInfo:
        """Remove token ``name``; it is refused from the next request on."""
        with self._lock:
            tokens = self._read() if self.path.exists() else []
            gone = [t for t in tokens if t.name == name]
            if not gone:
                known = ", ".join(t.name for t in tokens) or "none"
                raise InvalidInputError(f"no token named {name!r} (tokens: {known})")
            self._write([t for t in tokens if t.name != name])
        return gone[0]

    def _write(self, tokens: list[TokenInfo]) -> None:
        if not self.path.parent.is_dir():
            raise WorkspaceError(f"{self.path.parent} is not a directory: cannot keep tokens there")
        doc = {"version": FORMAT_VERSION, "tokens": [asdict(t) for t in tokens]}
        atomic.write_json(self.path, doc)  # a private temp file renamed over: mode 0600
        self._seen = None


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInputError("token name must be 1-64 letters, digits, '.', '_', ':' or '-', e.g. 'ci-agent'")
    return value
