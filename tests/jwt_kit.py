"""What the JWT auth tests share: an identity provider whose JWKS the ``jwt_provider``
fixture (conftest) serves over real HTTP, configs with JWT auth on, and reading what a call
did."""

import time

import jwt
from admin_kit import PRICED, admin_get
from aiohttp import web
from gatehouse.app import GATEWAY

AUDIENCE = "gatehouse-tests"


class Provider:
    """An identity provider: signing keys, and the JWKS it publishes over HTTP."""

    def __init__(self):
        self.keys = {}
        self.published = []
        self.fetches = 0

    def add(self, kid, private, algorithm, publish=True):
        self.keys[kid] = (private, algorithm)
        if publish:
            self.publish(kid)

    def publish(self, kid):
        private, algorithm = self.keys[kid]
        jwk = jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key(), as_dict=True)
        self.published.append({**jwk, "kid": kid, "alg": algorithm})

    def token(self, kid="rsa", **claims):
        private, algorithm = self.keys[kid]
        claims = {"aud": AUDIENCE, "exp": int(time.time()) + 300, **claims}
        return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid})

    async def jwks(self, request):
        self.fetches += 1
        return web.json_response({"keys": self.published})


JWT_SETTINGS = {"team_id_jwt_field": "client_id", "user_id_jwt_field": "sub",
                "org_id_jwt_field": "org_id"}


def jwt_config(fake_upstream=None, **jwtauth):
    """A config with JWT auth on (JWT_SETTINGS and ``jwtauth``), and with ``fake_upstream``
    gpt-4o priced."""
    config = {"general_settings": {"enable_jwt_auth": True,
                                   "litellm_jwtauth": {**JWT_SETTINGS, **jwtauth}}}
    if fake_upstream is not None:
        config["model_list"] = [fake_upstream.model_entry("gpt-4o", **PRICED)]
    return config


async def error_of(resp, status):
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


async def settle(client):
    """Every call so far logged and its spend written."""
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()


async def listed(client, headers):
    """The model ids /v1/models lists to ``headers``."""
    resp = await client.get("/v1/models", headers=headers)
    assert resp.status == 200, await resp.text()
    return [entry["id"] for entry in (await resp.json())["data"]]


def private_config(fake_upstream, **jwtauth):
    """gpt-4o for all, and b-private: a deployment of team t-b alone."""
    config = jwt_config(fake_upstream, **jwtauth)
    config["model_list"].append({**fake_upstream.model_entry("b-private", **PRICED),
                                 "model_info": {"team_id": "t-b"}})
    return config


async def team_of_call(client, resp):
    """The team a successful call was made as, by its spend log."""
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    return log["team_id"]
