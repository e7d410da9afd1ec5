"""ID tokens from an OIDC provider we did not write (panva's oidc-provider, in Node), checked
by the real verifier: algorithms, key rotation, exact issuers, audiences, expiry, groups from
the token or /userinfo in every shape, and a distinct code for each refusal."""

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from backend.auth.oidc import ACCESS_TOKEN_HEADER, OidcVerifier, parse_groups
from backend.core.errors import ApiError
from backend.core.settings import Settings
from tests.support.databases import Database
from tests.support.env import server_env
from tests.support.node_oidc import NodeOidcProvider
from tests.support.servers import ApiServer, free_port


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc") / "keys.json"


@pytest.fixture(scope="module")
def idp(keys_file: Path) -> Iterator[NodeOidcProvider]:
    provider = NodeOidcProvider(free_port(), keys_file=keys_file)
    provider.set_user("alice", email="alice@example.com", name="Alice", groups=["reviewer", "admin"])
    provider.set_user("bob", email="bob@example.com", groups=["reviewer"])
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def tenant(keys_file: Path, idp: NodeOidcProvider) -> Iterator[NodeOidcProvider]:
    """A second provider with the same signing keys (as tenants of one multi-tenant provider
    have) and an issuer that ends in '/', as Auth0 writes its issuers."""
    port = free_port()
    provider = NodeOidcProvider(port, issuer=f"http://localhost:{port}/", keys_file=keys_file)
    provider.set_user("alice", groups=["reviewer"])
    yield provider
    provider.close()


def verifier(issuer: str, client_id: str = "signoff-rs256", **settings: object) -> OidcVerifier:
    return OidcVerifier(Settings(oidc_issuer=issuer, oidc_client_id=client_id, **settings))


def refusal(v: OidcVerifier, token: str, access_token: str | None = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        v.verify(token, access_token)
    return caught.value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("client", ["rs256", "ps256", "es256", "eddsa", "ed25519"])
def test_every_advertised_algorithm_is_accepted(idp: NodeOidcProvider, client: str) -> None:
    token = idp.login("alice", client_id=f"signoff-{client}", id_token_claims=["groups"])["id_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == {"eddsa": "EdDSA", "ed25519": "Ed25519"}.get(client, client.upper())
    user = verifier(idp.issuer, f"signoff-{client}").verify(token)
    assert user.sub == "alice" and user.groups == ("reviewer", "admin")


@pytest.fixture
def rotating() -> Iterator[NodeOidcProvider]:
    """A provider of this test's own: rotating its keys must not touch the shared one's."""
    provider = NodeOidcProvider(free_port())
    provider.set_user("alice", groups=["reviewer", "admin"])
    yield provider
    provider.close()


def test_a_key_rotated_mid_session_is_picked_up_at_once(rotating: NodeOidcProvider) -> None:
    idp = rotating
    v = verifier(idp.issuer, oidc_refetch_seconds=3600)
    before = idp.login("alice", id_token_claims=["groups"])["id_token"]
    assert v.verify(before).sub == "alice"
    fetches = v.key_fetches

    new_kids = idp.rotate()
    after = idp.login("alice", id_token_claims=["groups"])["id_token"]
    header = json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "=="))
    assert header["kid"] in new_kids
    assert v.verify(after).groups == ("reviewer", "admin")  # no restart, no hour-long cache
    assert v.key_fetches == fetches + 1
    # The old key is no longer published: its tokens are refused for what they are.
    assert refusal(v, before).code == "unknown_signing_key"


def test_unknown_key_ids_refetch_at_most_once_per_interval(idp: NodeOidcProvider) -> None:
    v = verifier(idp.issuer, oidc_refetch_seconds=3600)
    v.keys()
    fetches = v.key_fetches
    forger = RSAKey.generate_key(2048)
    for kid in ("forged-1", "forged-2", "forged-3"):
        claims = {"iss": idp.issuer, "aud": "signoff-rs256", "sub": "mallory", "exp": int(time.time()) + 60}
        token = jwt.encode({"alg": "RS256", "kid": kid}, claims, forger)
        assert refusal(v, token).code == "unknown_signing_key"
    assert v.key_fetches == fetches + 1


def test_each_refusal_has_its_own_code(idp: NodeOidcProvider, tenant: NodeOidcProvider) -> None:
    v = verifier(idp.issuer)
    good = idp.login("alice", id_token_claims=["groups"])["id_token"]

    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = f"{head}.{_b64(json.dumps({**claims, 'groups': ['admin', 'god']}).encode())}.{sig}"
    assert refusal(v, forged).code == "invalid_signature"

    other_client = idp.login("alice", client_id="signoff-ps256")["id_token"]
    assert refusal(v, other_client).code == "wrong_audience"

    # Signed by a key this verifier trusts, but issued by another tenant.
    from_tenant = tenant.login("alice", id_token_claims=["groups"])["id_token"]
    assert refusal(v, from_tenant).code == "wrong_issuer"

    hs256 = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key("secret" * 8))
    assert refusal(v, hs256).code == "unsupported_algorithm"
    assert refusal(v, "not-a-jwt").code == "malformed_token"
    assert all(refusal(v, t).status == 401 for t in (forged, other_client, from_tenant, hs256))


def test_an_expired_token_is_token_expired(idp: NodeOidcProvider) -> None:
    token = idp.login("alice", client_id="signoff-short")["id_token"]  # lives one second
    time.sleep(2.1)
    err = refusal(verifier(idp.issuer, "signoff-short", oidc_leeway_seconds=0), token)
    assert (err.status, err.code) == (401, "token_expired")


def test_the_issuer_is_compared_exactly_as_configured(tenant: NodeOidcProvider) -> None:
    assert tenant.issuer.endswith("/")
    token = tenant.login("alice", id_token_claims=["groups"])["id_token"]
    assert verifier(tenant.issuer).verify(token).groups == ("reviewer",)

    err = refusal(verifier(tenant.issuer.rstrip("/")), token)
    assert (err.status, err.code) == (503, "oidc_misconfigured")
    assert tenant.issuer in err.message


def test_groups_only_in_userinfo(idp: NodeOidcProvider) -> None:
    # This provider puts the groups scope's claims in /userinfo only, unless asked otherwise.
    login = idp.login("alice")
    assert "groups" not in json.loads(base64.urlsafe_b64decode(login["id_token"].split(".")[1] + "=="))

    auto = verifier(idp.issuer)
    assert auto.verify(login["id_token"], login["access_token"]).groups == ("reviewer", "admin")
    assert auto.verify(login["id_token"]).groups == ()

    from_userinfo = verifier(idp.issuer, oidc_groups_source="userinfo")
    assert refusal(from_userinfo, login["id_token"]).code == "access_token_required"
    assert refusal(from_userinfo, login["id_token"], "garbage").code == "access_token_refused"
    bob = idp.login("bob")
    assert refusal(from_userinfo, login["id_token"], bob["access_token"]).code == "userinfo_mismatch"

    from_token = verifier(idp.issuer, oidc_groups_source="id_token")
    assert from_token.verify(login["id_token"], login["access_token"]).groups == ()


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("groups", ["reviewer", "admin"]),
        ("groups", "reviewer admin"),
        ("groups", "reviewer,admin"),
        ("groups", " reviewer, admin ,"),
        ("roles", ["reviewer", "admin"]),
        ("realm_access.roles", ["reviewer", "admin"]),
    ],
)
def test_claim_shapes(idp: NodeOidcProvider, claim: str, value: object) -> None:
    top = claim.split(".")[0]
    nested = {"roles": value} if "." in claim else value
    idp.set_user("shape", **{top: nested})
    login = idp.login("shape", id_token_claims=[top])
    user = verifier(idp.issuer, oidc_roles_claim=claim).verify(login["id_token"])
    assert user.groups == ("reviewer", "admin")
    assert user.has("reviewer") and not user.has("reviewer admin")


def test_parse_groups_ignores_what_is_not_names() -> None:
    assert parse_groups(None) == () and parse_groups(42) == () and parse_groups({"a": 1}) == ()
    assert parse_groups(["a", "a", " b "]) == ("a", "b")


def test_the_api_with_this_provider(database: Database, idp: NodeOidcProvider) -> None:
    """End to end: groups from /userinfo through the console's header; refusals as JSON."""
    env = server_env(database, idp.issuer, SIGNOFF_OIDC_CLIENT_ID="signoff-rs256")
    srv = ApiServer(env)
    try:
        login = idp.login("alice")
        bearer = {"Authorization": f"Bearer {login['id_token']}"}
        with httpx.Client(base_url=srv.url, timeout=30) as api:
            assert api.get("/v1/queue", headers=bearer).json()["error"]["code"] == "not_a_reviewer"
            ok = api.get("/v1/queue", headers={**bearer, ACCESS_TOKEN_HEADER: login["access_token"]})
            assert ok.status_code == 200, ok.text
            other = idp.login("alice", client_id="signoff-es256")["id_token"]
            r = api.get("/v1/queue", headers={"Authorization": f"Bearer {other}"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "wrong_audience"
            assert "Bearer" in r.headers["www-authenticate"]
    finally:
        srv.close()


def test_a_key_set_with_unusable_keys_still_verifies(idp: NodeOidcProvider) -> None:
    """Keys we cannot use (encryption keys) in the JWKS do not hide the signing keys."""
    published = httpx.get(f"{idp.base}/jwks").json()
    assert KeySet.import_key_set(published).keys  # the provider's own set imports
    assert verifier(idp.issuer).keys().keys
