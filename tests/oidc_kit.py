"""A small OIDC provider served by the test (discovery, authorize, token with PKCE, userinfo,
JWKS, RS256 id_tokens) for the SSO login of the admin UI."""

import base64
import hashlib
import secrets
import time

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID, CLIENT_SECRET = "gatehouse-ui", "s3cret-of-the-client"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Provider:
    """An OIDC provider: each authorization code works once, for the PKCE verifier it was
    issued for."""

    def __init__(self):
        self.key, self.kid = rsa_key(), "k1"
        self.signing_key = self.key  # a test swaps it to sign with a key the JWKS lacks
        self.user = {"preferred_username": "ada", "email": "ada@corp.io", "sub": "u-1"}
        self.codes, self.tokens = {}, {}
        self.base = None

    def app(self):
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/userinfo", self.userinfo)
        app.router.add_get("/jwks", self.jwks)
        return app

    async def discovery(self, request):
        return web.json_response({
            "issuer": self.base, "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token", "userinfo_endpoint": f"{self.base}/userinfo",
            "jwks_uri": f"{self.base}/jwks"})

    async def authorize(self, request):
        q = request.query
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(8)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q["nonce"],
                            "redirect_uri": q["redirect_uri"], "user": dict(self.user)}
        raise web.HTTPFound(f"{q['redirect_uri']}?code={code}&state={q['state']}")

    async def token(self, request):
        form = await request.post()
        issued = self.codes.pop(form["code"], None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (issued is None or challenge != issued["challenge"]
                or form["redirect_uri"] != issued["redirect_uri"]
                or (form["client_id"], form["client_secret"]) != (CLIENT_ID, CLIENT_SECRET)):
            return web.json_response({"error": "invalid_grant"}, status=400)
        access = secrets.token_urlsafe(8)
        self.tokens[access] = issued["user"]
        now = int(time.time())
        id_token = jwt.encode({"iss": self.base, "aud": CLIENT_ID, "iat": now,
                               "exp": now + 300, "nonce": issued["nonce"], **issued["user"]},
                              self.signing_key, algorithm="RS256", headers={"kid": self.kid})
        return web.json_response({"access_token": access, "token_type": "Bearer",
                                  "id_token": id_token})

    async def userinfo(self, request):
        user = self.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        return web.json_response(user) if user else web.json_response({}, status=401)

    async def jwks(self, request):
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": self.kid, "use": "sig"}]})
