"""Dependencies as `Annotated` aliases, so a route's signature says who may call it."""

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.agents import keys
from backend.auth import token_cache
from backend.auth.oidc import ACCESS_TOKEN_HEADER, OidcVerifier, User
from backend.controls import admission
from backend.core.db import read_session, write_session
from backend.core.errors import ApiError
from backend.core.settings import Settings, get_settings
from backend.proposals import waiting
from models.agents import Agent, ApiKey

_HEADERS = {"WWW-Authenticate": 'Bearer realm="signoff"'}


def _write() -> Iterator[Session]:
    with write_session() as session:
        yield session


def _read() -> Iterator[Session]:
    with read_session() as session:
        yield session


SessionDep = Annotated[Session, Depends(_write)]
ReadSessionDep = Annotated[Session, Depends(_read)]


async def _settings() -> Settings:
    """Async, so FastAPI calls it in place: a sync dependency costs a trip to the threadpool."""
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


@lru_cache
def get_verifier() -> OidcVerifier:
    return OidcVerifier(get_settings())


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "missing_credentials", "Send 'Authorization: Bearer <token>'.", headers=_HEADERS)
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_authorization_header", "Use the Bearer scheme.", headers=_HEADERS)
    return token.strip()


@dataclass(frozen=True)
class AgentPrincipal:
    agent: Agent
    key: ApiKey

    @property
    def actor(self) -> str:
        return f"agent:{self.agent.id}"


def _api_key(request: Request) -> str:
    token = _bearer(request)
    if not token.startswith(keys.PREFIX):
        raise ApiError(
            401, "invalid_api_key", "Agents authenticate with an API key (so_...).", headers=_HEADERS
        )
    return token


def _current_agent(request: Request) -> AgentPrincipal:
    """The agent behind the API key, read in a session of its own that is closed before the
    route runs: a long-polling agent must not hold a connection while it waits."""
    with read_session() as session:
        agent, key = keys.authenticate(session, _api_key(request))
    return AgentPrincipal(agent, key)


def _checked_key(token: str, key_hash: str) -> keys.KeyRef:
    with read_session() as session:
        agent, key = keys.authenticate(session, token)
    ref = keys.KeyRef(agent.id, key.id, key.expires_at)
    keys.remember_valid(key_hash, ref)
    return ref


async def _placing_agent(request: Request) -> keys.KeyRef:
    """The agent placing a proposal: checked here against a moment-old answer when there is
    one, and for certain inside the placement's own transaction (see ``keys.recently_valid``)."""
    token = _api_key(request)
    key_hash = keys.hash_key(token)
    ref = keys.recently_valid(key_hash)
    if ref is None:
        ref = await run_in_threadpool(_checked_key, token, key_hash)
    return ref


async def _waiting_key(request: Request) -> keys.KeyRef:
    """An agent about to read its proposal's decision (perhaps long-polling), let in like
    :func:`_placing_agent`; the read checks the key and the agent again for certain
    (``reading.read_decision_state``). A check that needs the database takes one of the
    waiters' share of the pool (``waiting.read_slots``)."""
    token = _api_key(request)
    key_hash = keys.hash_key(token)
    ref = keys.recently_valid(key_hash)
    if ref is None:
        async with waiting.read_slots():
            ref = await run_in_threadpool(_checked_key, token, key_hash)
    return ref


PlacingAgent = Annotated[keys.KeyRef, Depends(_placing_agent)]
# Let in the same way, and checked for certain inside the execution report's transaction.
ReportingAgent = Annotated[keys.KeyRef, Depends(_placing_agent)]
WaitingKey = Annotated[keys.KeyRef, Depends(_waiting_key)]


def _user_key(request: Request) -> tuple[str, str | None, str]:
    token = _bearer(request)
    if token.startswith(keys.PREFIX):
        raise ApiError(403, "people_only", "This endpoint is for people; API keys are for agents.")
    access_token = request.headers.get(ACCESS_TOKEN_HEADER) or None
    # The access token is part of the key: with groups from /userinfo it shapes the user.
    key = token_cache.verified.key(token if access_token is None else f"{token}\n{access_token}")
    return token, access_token, key


def _verified(token: str, access_token: str | None, key: str) -> User:
    user = get_verifier().verify(token, access_token)
    token_cache.verified.put(key, user)
    return user


def _current_user_now(request: Request) -> User:
    token, access_token, key = _user_key(request)
    return token_cache.verified.get(key) or _verified(token, access_token, key)


async def _current_user(request: Request) -> User:
    """The person behind the ID token: from the cache of verified tokens in place, else
    verified in the threadpool (it may fetch the identity provider's keys)."""
    token, access_token, key = _user_key(request)
    user = token_cache.verified.get(key)
    if user is None:
        user = await run_in_threadpool(_verified, token, access_token, key)
    return user


def _check_reviewer(user: User, settings: Settings) -> User:
    if not (user.has(settings.reviewer_role) or user.has(settings.admin_role)):
        raise ApiError(403, "not_a_reviewer", f"You need the '{settings.reviewer_role}' role.")
    return user


async def _reviewer(user: Annotated[User, Depends(_current_user)], settings: SettingsDep) -> User:
    return _check_reviewer(user, settings)


async def _admin(user: Annotated[User, Depends(_current_user)], settings: SettingsDep) -> User:
    if not user.has(settings.admin_role):
        raise ApiError(403, "not_an_admin", f"You need the '{settings.admin_role}' role.")
    return user


async def _auditor(user: Annotated[User, Depends(_current_user)], settings: SettingsDep) -> User:
    if not (user.has(settings.admin_role) or user.has(settings.auditor_role)):
        raise ApiError(403, "not_an_auditor", f"You need the '{settings.auditor_role}' or admin role.")
    return user


def _active_agent(request: Request) -> AgentPrincipal:
    """An agent that is allowed to act now (placing a proposal checks this itself, to audit
    it), checked in one short session that is closed before the route runs."""
    token = _api_key(request)
    with read_session() as session:
        agent, key = keys.authenticate(session, token)
        admission.check(session, agent, admission.Asker.agent)
    return AgentPrincipal(agent, key)


CurrentAgent = Annotated[AgentPrincipal, Depends(_current_agent)]
ActiveAgent = Annotated[AgentPrincipal, Depends(_active_agent)]
CurrentUser = Annotated[User, Depends(_current_user)]
CurrentReviewer = Annotated[User, Depends(_reviewer)]
AdminDep = Annotated[User, Depends(_admin)]
AuditorDep = Annotated[User, Depends(_auditor)]


def _caller(request: Request, settings: SettingsDep) -> AgentPrincipal | User:
    """An agent (by API key) or a reviewer (by ID token), for endpoints both may read."""
    if _bearer(request).startswith(keys.PREFIX):
        return _active_agent(request)
    return _check_reviewer(_current_user_now(request), settings)


CurrentCaller = Annotated[AgentPrincipal | User, Depends(_caller)]
