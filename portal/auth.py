"""Users, roles, password hashing, sessions and CSRF protection for the portal.

- Passwords are hashed with scrypt (RFC 7914, memory-hard; Python's hashlib) with a per-user salt; the stored
  string names its parameters, so they can be raised later without breaking old hashes.
- Sessions are server-side records (`SessionRow`, table portal_sessions): the signed cookie (HttpOnly,
  SameSite=Lax) carries only a random token whose SHA-256 names the record, so any portal worker can serve any
  request (workers keep nothing), and logout or a password reset revokes the record: a replayed cookie is refused.
- CSRF: the login form carries a token bound to the session; Dash's own requests carry the `_csrf_token`
  cookie back in the `X-CSRFToken` header (the Dash renderer does this by itself), and every POST to a Dash
  endpoint without a matching header is refused (double-submit cookie).
- Failed logins are throttled, never locked (`LoginThrottle`, counted in the metadata database, so every worker
  sees the same counts): per address (password spraying from one place), per address and user name (guessing one
  account), and per account from everywhere as a slowdown (one try per `ACCOUNT_SPACING` once an account has
  had `MAX_FAILED_PER_ACCOUNT` failures) that a browser the user has signed in from before is spared, so an
  attacker elsewhere cannot lock the rightful user out.  The answer is the same for unknown and known names.
- Sessions end `SESSION_HOURS` after login whatever the activity (absolute lifetime), after `IDLE_HOURS` without
  activity, at logout, and as soon as the user's password is reset (every record of the user is revoked).
- Passwords: at least 10 characters, not whitespace, not a common or trivial password (`password_problem`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, ForeignKey, ForeignKeyConstraint, String, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from park.metadata import Base, UTCDateTime

SESSION_HOURS = 8  # absolute: a session ends this long after login
IDLE_HOURS = 2  # and after this long without a request
TOUCH_EVERY = timedelta(minutes=1)  # how stale a session's last_seen_at may get before a request rewrites it
MAX_FAILED_PER_NAME = 5  # failed logins for one user name from one address within THROTTLE_WINDOW
MAX_FAILED_PER_ADDRESS = 20  # failed logins from one address, whatever the names
MAX_FAILED_PER_ACCOUNT = 10  # failed logins for one user name from anywhere: then the account slows down
ACCOUNT_SPACING = timedelta(seconds=10)  # one try per this long for a slowed-down account (unknown browsers)
THROTTLE_WINDOW = timedelta(minutes=15)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class Role(StrEnum):
    ADMIN = "admin"  # park administrator: everything
    ENTERPRISE = "enterprise"  # an enterprise's user: its own data only
    BANK = "bank"  # sees only enterprises that granted it consent (green-loan evidence)
    REGULATOR = "regulator"  # read-only, park-wide


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"]),)

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    enterprise_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SessionRow(Base):
    """A signed-in browser: the cookie holds a random token, this row its SHA-256 (a copy of the table yields no
    usable cookie).  Revoked at logout and password reset; refused after `expires_at` (absolute) and after
    `IDLE_HOURS` since `last_seen_at`."""

    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), ForeignKey("users.username"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    address: Mapped[str] = mapped_column(String(64), default="")


class LoginFailureRow(Base):
    """One failed (or throttled) login: when, from which address, for which user name (lower case, bounded).
    Rows older than the throttle window are deleted as new ones come."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64), index=True)


@dataclass(frozen=True)
class User:
    """The signed-in user as the rest of the portal sees it (Flask-Login's user object)."""

    username: str
    park_id: str
    role: Role
    enterprise_id: str | None
    display_name: str = ""
    stamp: str = field(default="", compare=False, repr=False)  # of the password hash: a reset ends sessions

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.username


class AuthError(ValueError):
    """A user or login problem with a message for the person at the keyboard."""


# Common passwords of 10 characters or more (from published leaked-password top lists) and keyboard runs.
_COMMON = """
1234567890 0123456789 0987654321 1234567891 12345678910 123456789a a123456789 1234qwer12 1q2w3e4r5t 1q2w3e4r5t6y
1qaz2wsx3edc qwertyuiop qwertyuiop1 asdfghjkl1 zxcvbnm123 qwerty1234 qwerty12345 1qazxsw23edc password12
password123 password1234 passw0rd12 p@ssw0rd12 p@ssword123 administrator admin12345 admin123456 adminadmin
iloveyou12 iloveyou123 welcome123 welcome1234 abcdefghij abc1234567 abcd123456 abcde12345 1234abcd12 letmein123
changeme12 changeme123 football12 baseball12 superman12 trustno1234 woaini1314 woaini520 5201314520 1314520520
aa123456789 qq123456789 zhang123456 wang123456 li123456789
"""
COMMON_PASSWORDS = frozenset(_COMMON.split())


def password_problem(password: str) -> str | None:
    """Why `password` may not be used, or None: too short, only whitespace, a common password, one repeated
    character or a run (1234567890, abcdefghij, qwertyuiop)."""
    if len(password) < 10:
        return "passwords need at least 10 characters"
    squeezed = password.strip().lower()
    if not squeezed:
        return "a password of spaces is not a password"
    if squeezed in COMMON_PASSWORDS or len(set(squeezed)) <= 3:
        return "this password is too common or too simple; choose a longer phrase"
    steps = {ord(b) - ord(a) for a, b in zip(squeezed, squeezed[1:], strict=False)}
    if len(steps) == 1 and steps <= {1, -1}:
        return "a run of consecutive characters is not a password"
    rows = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
    if any(squeezed in r or squeezed in r[::-1] for r in rows) or squeezed in "".join(rows):
        return "a run of keys is not a password"
    return None


def hash_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise AuthError(problem)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_SCRYPT)
    params = f"n={_SCRYPT['n']},r={_SCRYPT['r']},p={_SCRYPT['p']}"
    return f"scrypt${params}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, params, salt_b64, digest_b64 = stored.split("$")
        p = {k: int(v) for k, v in (kv.split("=") for kv in params.split(","))}
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), dklen=32,
                            maxmem=64 * 1024 * 1024, n=p["n"], r=p["r"], p=p["p"])
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _user(row: UserRow) -> User:
    stamp = hashlib.sha256(row.password_hash.encode()).hexdigest()[:16]
    return User(row.username, row.park_id, Role(row.role), row.enterprise_id, row.display_name, stamp)


def add_user(engine: Engine, park_id: str, username: str, password: str, role: Role | str,
             enterprise_id: str | None = None, display_name: str = "", replace: bool = False) -> User:
    """Create (or, with replace, reset) a user.  An enterprise user must name its enterprise; others must not."""
    role = Role(role)
    if role is Role.ENTERPRISE and not enterprise_id:
        raise AuthError("an enterprise user must be bound to one enterprise (--enterprise ID)")
    if role is not Role.ENTERPRISE and enterprise_id:
        raise AuthError(f"a {role} user is not bound to an enterprise")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AuthError(f"user name {username!r}: use 1-64 letters, digits, '-', '_' or '.'")
    from park.metadata import EnterpriseRow

    with Session(engine) as s, s.begin():
        if enterprise_id and s.get(EnterpriseRow, (park_id, enterprise_id)) is None:
            raise AuthError(f"enterprise {enterprise_id!r} is not in park {park_id!r}")
        row = s.get(UserRow, username)
        if row is not None and not replace:
            raise AuthError(f"user {username!r} exists; pass --replace to reset it")
        row = row or UserRow(username=username, created_at=datetime.now(UTC))
        row.park_id, row.role, row.enterprise_id = park_id, role.value, enterprise_id
        row.display_name, row.password_hash = display_name, hash_password(password)
        row.active, row.failed_logins, row.locked_until = True, 0, None
        s.add(row)
        s.flush()
        _revoke(s, username, datetime.now(UTC))  # a reset password ends every session begun with the old one
    return User(username, park_id, role, enterprise_id, display_name)


def authenticate(engine: Engine, username: str, password: str, now: datetime | None = None) -> User:
    """The user if the password is right; AuthError otherwise, with the same message and the same work whether the
    user exists or not.  Nothing is locked here: throttling is per address (LoginThrottle)."""
    now = now or datetime.now(UTC)
    error = None
    with Session(engine) as s, s.begin():  # the failure count must be committed, so raise after the commit
        row = s.get(UserRow, username)
        if row is None or not row.active:
            verify_password(password, _dummy_hash())  # the same work either way: no user enumeration by timing
            error = "wrong user name or password"
        elif not verify_password(password, row.password_hash):
            row.failed_logins += 1  # for the administrator's eyes; it locks nothing
            error = "wrong user name or password"
        else:
            row.failed_logins, row.locked_until, row.last_login_at = 0, None, now
            user = _user(row)
    if error:
        raise AuthError(error)
    return user


def load_user(engine: Engine, username: str) -> User | None:
    with Session(engine) as s:
        row = s.get(UserRow, username)
        return _user(row) if row is not None and row.active else None


def list_users(engine: Engine, park_id: str) -> list[UserRow]:
    with Session(engine) as s:
        return list(s.scalars(select(UserRow).where(UserRow.park_id == park_id).order_by(UserRow.username)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _revoke(s: Session, username: str, now: datetime) -> int:
    return s.execute(update(SessionRow).where(SessionRow.username == username, SessionRow.revoked_at.is_(None))
                     .values(revoked_at=now)).rowcount


def start_session(engine: Engine, user: User, address: str | None = None, now: datetime | None = None) -> str:
    """A new session for `user`: the token for its cookie (the database keeps only the token's SHA-256).
    Sessions that ended more than a day ago are deleted on the way."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    with Session(engine) as s, s.begin():
        s.execute(delete(SessionRow).where(SessionRow.expires_at < now - timedelta(days=1)))
        s.add(SessionRow(id=_digest(token), username=user.username, created_at=now, last_seen_at=now,
                         expires_at=now + timedelta(hours=SESSION_HOURS), address=(address or "")[:64]))
    return token


def session_user(engine: Engine, token: str | None, now: datetime | None = None) -> User | None:
    """The user of a live session, or None: unknown token, revoked (logout, password reset), past its absolute
    lifetime, idle for longer than IDLE_HOURS, or its user deactivated.  Marks the session seen (at most once per
    TOUCH_EVERY, to spare the database a write per request)."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    now = now or datetime.now(UTC)
    digest = _digest(token)
    # one query for the session and its user (every request of a signed-in browser asks it)
    with engine.connect() as conn:
        found = conn.execute(select(SessionRow.revoked_at, SessionRow.expires_at, SessionRow.last_seen_at,
                                    *[getattr(UserRow, c) for c in _USER_FIELDS])
                             .join(UserRow, UserRow.username == SessionRow.username)
                             .where(SessionRow.id == digest)).first()
        if found is None:
            return None
        if (found.revoked_at is not None or now >= found.expires_at
                or now - found.last_seen_at >= timedelta(hours=IDLE_HOURS) or not found.active):
            return None
        if now - found.last_seen_at >= TOUCH_EVERY:
            conn.execute(update(SessionRow).where(SessionRow.id == digest).values(last_seen_at=now))
            conn.commit()
    return _user(found)  # the row has the user's columns by name


_USER_FIELDS = ("username", "park_id", "role", "enterprise_id", "display_name", "password_hash", "active")  # _user's


def end_session(engine: Engine, token: str | None, now: datetime | None = None) -> None:
    """Revoke one session (logout): its cookie is refused from now on, wherever it is replayed."""
    if token and isinstance(token, str):
        with Session(engine) as s, s.begin():
            s.execute(update(SessionRow).where(SessionRow.id == _digest(token), SessionRow.revoked_at.is_(None))
                      .values(revoked_at=now or datetime.now(UTC)))


def revoke_sessions(engine: Engine, username: str, now: datetime | None = None) -> int:
    """Revoke every live session of a user; how many there were."""
    with Session(engine) as s, s.begin():
        return _revoke(s, username, now or datetime.now(UTC))


class LoginThrottle:
    """Failed logins counted over a sliding window in the metadata database (shared by every portal worker).

    `wait(address, name, known_browser)` is how many seconds that attempt must wait (0: it may try), the same for
    a name that exists and one that does not:
    - per address: `per_address` failures from one address, whatever the names (password spraying);
    - per address and name: `per_name` failures for one name from one address (guessing one account);
    - per account, from everywhere: once a name has had `per_account` failures, one try per `account_spacing`
      (a slowdown, not a lock), skipped for a browser that has signed in as that user before (`known_browser`),
      so a distributed guesser cannot keep the rightful user out.
    A success clears its (address, name) failures."""

    def __init__(self, engine: Engine, per_name: int = MAX_FAILED_PER_NAME, per_address: int = MAX_FAILED_PER_ADDRESS,
                 per_account: int = MAX_FAILED_PER_ACCOUNT, window: timedelta = THROTTLE_WINDOW,
                 account_spacing: timedelta = ACCOUNT_SPACING, clock=None) -> None:
        self.engine, self.per_name, self.per_address, self.per_account = engine, per_name, per_address, per_account
        self.window, self.account_spacing = window, account_spacing
        self._clock = clock or (lambda: datetime.now(UTC))

    @staticmethod
    def _key(address: str | None, name: str) -> tuple[str, str]:
        return (address or "?")[:64], name.strip().lower()[:64]

    def wait(self, address: str | None, name: str, known_browser: bool = False) -> float:
        now = self._clock()
        address, name = self._key(address, name)
        since = now - self.window
        recent = select(LoginFailureRow.at).where(LoginFailureRow.at > since)
        waits = [0.0]
        with Session(self.engine) as s:
            for where, limit in (((LoginFailureRow.address == address,), self.per_address),
                                 ((LoginFailureRow.address == address, LoginFailureRow.name == name), self.per_name)):
                times = s.scalars(recent.where(*where).order_by(LoginFailureRow.at.desc()).limit(limit)).all()
                if len(times) >= limit:  # wait until the oldest of the last `limit` leaves the window
                    waits.append((times[-1] + self.window - now).total_seconds())
            if not known_browser:
                count, last = s.execute(select(func.count(), func.max(LoginFailureRow.at))
                                        .where(LoginFailureRow.at > since, LoginFailureRow.name == name)).one()
                if count >= self.per_account and last is not None:
                    last = last if last.tzinfo else last.replace(tzinfo=UTC)
                    waits.append((last + self.account_spacing - now).total_seconds())
        return max(waits)

    def failed(self, address: str | None, name: str) -> None:
        now = self._clock()
        address, name = self._key(address, name)
        with Session(self.engine) as s, s.begin():
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.at <= now - self.window))
            s.add(LoginFailureRow(at=now, address=address, name=name))

    def succeeded(self, address: str | None, name: str) -> None:
        address, name = self._key(address, name)
        with Session(self.engine) as s, s.begin():
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.address == address, LoginFailureRow.name == name))
