"""Secrets from a key manager at start: USE_AWS_KMS decrypting the environment, and
key_management_system (aws_kms, aws_secret_manager, hashicorp_vault) answering os.environ/
references. AWS is moto's server; Vault is a fake speaking its KV v2 and cert-login wire format.
Whatever fails, the message names the variable and never a secret."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import logging
import ssl
import subprocess
import sys
import urllib.error

import botocore.session
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gatehouse.config import ConfigError, config_from_dict
from test_cli import STRONG_KEY, free_port, gatehouse, post, serving

REGION = "eu-west-1"
UPSTREAM_KEY = "sk-upstream-plaintext-7d1c"
VAULT_TOKEN = "hvs.root-token-for-tests"


# -- AWS -------------------------------------------------------------------------------------

@pytest.fixture
def aws(aws_env, aws_server):
    """AWS credentials, region and endpoint pointing at moto, in this process's environment
    (and so a gatehouse subprocess's); returns a botocore client factory."""
    aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws_env.setenv("AWS_REGION_NAME", REGION)
    aws_env.setenv("AWS_ENDPOINT_URL", aws_server)
    return lambda service: botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=aws_server)


@pytest.fixture
def encrypt(aws):
    """``encrypt(text)``: a base64 KMS ciphertext of ``text`` under a new moto key."""
    kms = aws("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return lambda text: base64.b64encode(
        kms.encrypt(KeyId=key, Plaintext=text.encode())["CiphertextBlob"]).decode()


def write_config(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def status(port, path, body, key):
    try:
        post(port, path, body, key)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


async def test_use_aws_kms_decrypts_the_environment_before_the_config_is_read(
        tmp_path, aws_env, encrypt, fake_upstream):
    # Both forms: a LITELLM_SECRET_AWS_KMS_ variable names where its plaintext goes; an
    # aws_kms/ value is decrypted in place.
    aws_env.setenv("USE_AWS_KMS", "True")
    aws_env.setenv("LITELLM_SECRET_AWS_KMS_GH_MASTER_KEY", encrypt(f"  {STRONG_KEY}\n"))
    aws_env.setenv("GH_UPSTREAM_KEY", "aws_kms/" + encrypt(UPSTREAM_KEY))
    port = free_port()
    config = write_config(tmp_path, f"""
general_settings:
  master_key: os.environ/GH_MASTER_KEY
  database_path: {tmp_path / "gatehouse.db"}
model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_base: "{fake_upstream.url}",
                      api_key: os.environ/GH_UPSTREAM_KEY}}
""")
    log = tmp_path / "gatehouse.log"
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

    def call_through_it():
        with serving(log, port, "--config", config, "--port", str(port)):
            return [status(port, "/v1/chat/completions", chat, key)
                    for key in (STRONG_KEY, "sk-not-the-master-key-at-all")]

    assert await asyncio.to_thread(call_through_it) == [200, 401]
    assert fake_upstream.headers[0]["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    text = log.read_text()
    assert "USE_AWS_KMS: decrypted GH_MASTER_KEY, GH_UPSTREAM_KEY" in text
    assert STRONG_KEY not in text and UPSTREAM_KEY not in text


@pytest.mark.parametrize("ciphertext", [
    "not base64 at all!",
    base64.b64encode(b"valid base64, but no KMS ciphertext").decode(),
])
def test_a_value_kms_cannot_decrypt_stops_the_start_naming_it(tmp_path, aws_env, encrypt,
                                                              ciphertext):
    aws_env.setenv("USE_AWS_KMS", "True")
    aws_env.setenv("LITELLM_SECRET_AWS_KMS_GH_FINE", encrypt("decrypts-fine-secret"))
    aws_env.setenv("GH_BROKEN", "aws_kms/" + ciphertext)
    result = gatehouse("check-config", "--config", write_config(tmp_path, "{}"))
    assert result.returncode == 2
    assert "gatehouse: error: USE_AWS_KMS: cannot decrypt GH_BROKEN: " in result.stderr
    assert ciphertext not in result.stderr and "decrypts-fine-secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_use_aws_kms_needs_the_region(tmp_path, aws, aws_env):
    aws_env.delenv("AWS_REGION_NAME")
    aws_env.setenv("USE_AWS_KMS", "True")
    result = gatehouse("check-config", "--config", write_config(tmp_path, "{}"))
    assert result.returncode == 2
    assert "Missing required environment variable - AWS_REGION_NAME" in result.stderr


def test_use_aws_kms_without_botocore_names_the_extra(tmp_path, aws, aws_env):
    aws_env.setenv("USE_AWS_KMS", "True")
    # The CLI as installed, in a Python where botocore cannot be imported.
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['botocore'] = None; "
         "from gatehouse.cli import main; sys.exit(main(sys.argv[1:]))",
         "check-config", "--config", write_config(tmp_path, "{}")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "USE_AWS_KMS needs botocore" in result.stderr
    assert "pip install 'gatehouse-proxy[aws]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_ciphertext_left_undecrypted_is_refused(monkeypatch):
    # Without USE_AWS_KMS the ciphertext itself would become the master key.
    monkeypatch.delenv("USE_AWS_KMS", raising=False)
    monkeypatch.setenv("GH_SEALED", "aws_kms/AQICAHgSealedValue==")
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"general_settings": {"master_key": "os.environ/GH_SEALED"}})
    assert ("general_settings.master_key: GH_SEALED holds an aws_kms/ ciphertext; set "
            "USE_AWS_KMS=True") in str(caught.value)
    assert "AQICAHgSealedValue" not in str(caught.value)


def test_aws_kms_decrypts_the_hosted_keys_only(aws, encrypt, monkeypatch):
    monkeypatch.setenv("GH_SEALED_KEY", encrypt(STRONG_KEY))
    monkeypatch.setenv("GH_PLAIN_BASE", "http://plain.example")
    config = config_from_dict({
        "general_settings": {"master_key": "os.environ/GH_SEALED_KEY",
                             "key_management_system": "aws_kms",
                             "key_management_settings": {"hosted_keys": ["GH_SEALED_KEY"]}},
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": "openai/m", "api_base": "os.environ/GH_PLAIN_BASE"}}]})
    assert config.general_settings.master_key.get_secret_value() == STRONG_KEY
    assert config.model_list[0].params.api_base == "http://plain.example"


def test_aws_secret_manager_answers_references_and_names_a_missing_one(aws):
    aws("secretsmanager").create_secret(Name="GH_MASTER_KEY", SecretString=STRONG_KEY)
    settings = {"key_management_system": "aws_secret_manager",
                "master_key": "os.environ/GH_MASTER_KEY"}
    config = config_from_dict({"general_settings": settings})
    assert config.general_settings.master_key.get_secret_value() == STRONG_KEY

    with pytest.raises(ConfigError) as caught:
        config_from_dict({"general_settings": {**settings,
                                               "database_url": "os.environ/GH_NO_SUCH"}})
    assert str(caught.value) == ("<config>: general_settings.database_url: "
                                 "aws_secret_manager has no secret GH_NO_SUCH")


# -- HashiCorp Vault ---------------------------------------------------------------------------

class FakeVault:
    """Vault's HTTP API as far as gatehouse uses it: KV v2 reads under ``/v1/[namespace/]
    secret/data/`` with ``X-Vault-Token``, and ``auth/cert/login`` (the client certificate the
    TLS handshake verified). Records ``(method, path, token)`` of every request."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict] = {}  # path after /v1/ -> the secret's data
        self.tokens = {VAULT_TOKEN}
        self.cert_token = "hvs.token-from-cert-login"
        self.logins: list[dict] = []
        self.seen: list[tuple[str, str, str | None]] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/auth/cert/login", self._login)
        self.app.router.add_get("/v1/{path:.*}", self._read)
        self.url = ""

    def put(self, path: str, **data: str) -> None:
        self.secrets[path] = data

    async def _read(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-Vault-Token")
        self.seen.append(("GET", request.path, token))
        if token not in self.tokens:
            return web.json_response({"errors": ["permission denied"]}, status=403)
        data = self.secrets.get(request.match_info["path"])
        if data is None:
            return web.json_response({"errors": []}, status=404)
        return web.json_response({
            "request_id": "4b7c3f9e-0000-4000-8000-000000000000", "lease_id": "",
            "renewable": False, "lease_duration": 0, "wrap_info": None, "warnings": None,
            "auth": None, "mount_type": "kv",
            "data": {"data": data, "metadata": {
                "created_time": "2026-01-02T03:04:05.000000Z", "custom_metadata": None,
                "deletion_time": "", "destroyed": False, "version": 1}}})

    async def _login(self, request: web.Request) -> web.Response:
        self.seen.append(("POST", request.path, request.headers.get("X-Vault-Token")))
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if not peer:
            return web.json_response({"errors": ["missing client token"]}, status=400)
        self.logins.append(await request.json())
        self.tokens.add(self.cert_token)
        return web.json_response({"auth": {
            "client_token": self.cert_token, "accessor": "acc", "policies": ["default"],
            "token_policies": ["default"], "lease_duration": 3600, "renewable": True,
            "metadata": {"cert_name": "gatehouse"}}})


@pytest.fixture
async def vault(aiohttp_server, monkeypatch):
    """A FakeVault over HTTP, with HCP_VAULT_ADDR and HCP_VAULT_TOKEN set for it. Reads are
    blocking, so tests make them in a thread while the fake answers on the loop."""
    fake = FakeVault()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("")).rstrip("/")
    for name in ("HCP_VAULT_NAMESPACE", "HCP_VAULT_CLIENT_CERT", "HCP_VAULT_CLIENT_KEY",
                 "HCP_VAULT_CERT_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HCP_VAULT_ADDR", fake.url)
    monkeypatch.setenv("HCP_VAULT_TOKEN", VAULT_TOKEN)
    return fake


VAULT_CONFIG = """
general_settings:
  key_management_system: hashicorp_vault
  master_key: os.environ/GH_MASTER_KEY
  database_path: {db}
"""


async def test_vault_serves_the_master_key_to_a_running_gateway(tmp_path, vault):
    vault.put("secret/data/GH_MASTER_KEY", key=STRONG_KEY)
    port = free_port()
    config = write_config(tmp_path, VAULT_CONFIG.format(db=tmp_path / "gatehouse.db"))
    log = tmp_path / "gatehouse.log"

    def generate_keys():
        with serving(log, port, "--config", config, "--port", str(port)):
            return [status(port, "/key/generate", {}, key)
                    for key in (STRONG_KEY, VAULT_TOKEN)]

    assert await asyncio.to_thread(generate_keys) == [200, 401]
    assert vault.seen == [("GET", "/v1/secret/data/GH_MASTER_KEY", VAULT_TOKEN)]
    assert STRONG_KEY not in log.read_text() and VAULT_TOKEN not in log.read_text()


@pytest.mark.parametrize("break_it,expected", [
    (lambda vault, env: env.setenv("HCP_VAULT_TOKEN", "hvs.wrong-token"),
     "cannot read GH_MASTER_KEY from hashicorp_vault: Vault answered HTTP 403: "
     "permission denied"),
    (lambda vault, env: vault.secrets.clear(), "hashicorp_vault has no secret GH_MASTER_KEY"),
    (lambda vault, env: vault.put("secret/data/GH_MASTER_KEY", value=STRONG_KEY),
     'cannot read GH_MASTER_KEY from hashicorp_vault: the secret has no "key" field'),
    (lambda vault, env: env.setenv("HCP_VAULT_ADDR", f"http://127.0.0.1:{free_port()}"),
     "cannot read GH_MASTER_KEY from hashicorp_vault: cannot read Vault at http://127.0.0.1:"),
])
async def test_a_secret_vault_cannot_give_stops_the_start_naming_it(
        tmp_path, vault, monkeypatch, break_it, expected):
    vault.put("secret/data/GH_MASTER_KEY", key=STRONG_KEY)
    break_it(vault, monkeypatch)
    config = write_config(tmp_path, VAULT_CONFIG.format(db=tmp_path / "gatehouse.db"))
    result = await asyncio.to_thread(gatehouse, "check-config", "--config", config)
    assert result.returncode == 2
    assert f"{config}: general_settings.master_key: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
    assert STRONG_KEY not in result.stderr and "hvs." not in result.stderr
    assert not (tmp_path / "gatehouse.db").exists()


async def test_vault_reads_the_namespace_and_only_the_hosted_keys(vault, monkeypatch):
    monkeypatch.setenv("HCP_VAULT_NAMESPACE", "team-a")
    monkeypatch.setenv("GH_LOCAL_BASE", "http://local.example")
    vault.put("team-a/secret/data/GH_MASTER_KEY", key=STRONG_KEY)
    data = {"general_settings": {
                "key_management_system": "hashicorp_vault",
                "key_management_settings": {"hosted_keys": ["GH_MASTER_KEY"]},
                "master_key": "os.environ/GH_MASTER_KEY"},
            "model_list": [{"model_name": "m", "litellm_params": {
                "model": "openai/m", "api_base": "os.environ/GH_LOCAL_BASE"}}]}
    config = await asyncio.to_thread(config_from_dict, data)
    assert config.general_settings.master_key.get_secret_value() == STRONG_KEY
    assert config.model_list[0].params.api_base == "http://local.example"
    assert vault.seen == [("GET", "/v1/team-a/secret/data/GH_MASTER_KEY", VAULT_TOKEN)]


async def test_write_only_access_reads_the_environment(vault, monkeypatch):
    monkeypatch.setenv("GH_MASTER_KEY", STRONG_KEY)
    config = await asyncio.to_thread(config_from_dict, {"general_settings": {
        "key_management_system": "hashicorp_vault",
        "key_management_settings": {"access_mode": "write_only"},
        "master_key": "os.environ/GH_MASTER_KEY"}})
    assert config.general_settings.master_key.get_secret_value() == STRONG_KEY
    assert vault.seen == []


def test_vault_needs_an_address_and_a_way_to_log_in(monkeypatch):
    for name in ("HCP_VAULT_ADDR", "HCP_VAULT_TOKEN", "HCP_VAULT_CLIENT_CERT",
                 "HCP_VAULT_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)
    data = {"general_settings": {"key_management_system": "hashicorp_vault",
                                 "master_key": "os.environ/GH_MASTER_KEY"}}
    with pytest.raises(ConfigError, match="hashicorp_vault: hashicorp_vault needs "
                                          "HCP_VAULT_ADDR"):
        config_from_dict(data)
    monkeypatch.setenv("HCP_VAULT_ADDR", "http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="needs HCP_VAULT_TOKEN, or HCP_VAULT_CLIENT_CERT"):
        config_from_dict(data)


def _certificate(subject, key, issuer=None, issuer_key=None, *, ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer.subject if issuer else
                            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write_pair(tmp_path, name, cert, key):
    (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(tmp_path / f"{name}.pem"), str(tmp_path / f"{name}.key")


async def test_vault_login_with_a_client_certificate(tmp_path, aiohttp_server, monkeypatch):
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1())
                                      for _ in range(3))
    ca = _certificate("test vault CA", ca_key, ca=True)
    ca_file, _ = _write_pair(tmp_path, "ca", ca, ca_key)
    server_files = _write_pair(tmp_path, "server",
                               _certificate("vault", server_key, ca, ca_key), server_key)
    client_cert, client_key_file = _write_pair(
        tmp_path, "client", _certificate("gatehouse", client_key, ca, ca_key), client_key)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_file)
    tls.load_cert_chain(*server_files)
    tls.verify_mode = ssl.CERT_REQUIRED
    vault = FakeVault()
    vault.tokens.clear()  # only the token the login hands out works
    server = await aiohttp_server(vault.app, ssl=tls)
    vault.put("secret/data/GH_MASTER_KEY", key=STRONG_KEY)
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)  # the gateway trusts the fake's CA
    monkeypatch.setenv("HCP_VAULT_ADDR", f"https://127.0.0.1:{server.port}")
    monkeypatch.setenv("HCP_VAULT_CLIENT_CERT", client_cert)
    monkeypatch.setenv("HCP_VAULT_CLIENT_KEY", client_key_file)
    monkeypatch.setenv("HCP_VAULT_CERT_ROLE", "gatehouse-role")
    monkeypatch.delenv("HCP_VAULT_TOKEN", raising=False)
    monkeypatch.delenv("HCP_VAULT_NAMESPACE", raising=False)
    config = await asyncio.to_thread(config_from_dict, {"general_settings": {
        "key_management_system": "hashicorp_vault", "master_key": "os.environ/GH_MASTER_KEY"}})
    assert config.general_settings.master_key.get_secret_value() == STRONG_KEY
    assert vault.logins == [{"name": "gatehouse-role"}]
    assert vault.seen == [("POST", "/v1/auth/cert/login", None),
                          ("GET", "/v1/secret/data/GH_MASTER_KEY", vault.cert_token)]


# -- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("system", ["azure_key_vault", "google_secret_manager", "google_kms"])
def test_a_litellm_manager_gatehouse_lacks_is_refused_saying_so(system):
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"general_settings": {"key_management_system": system}})
    assert f"general_settings.key_management_system: Value error, {system} is not supported " \
           f"by gatehouse, " \
           f"which reads secrets from aws_kms, aws_secret_manager, hashicorp_vault only" \
        in str(caught.value)


def test_an_unknown_manager_is_refused_naming_those_gatehouse_has():
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"general_settings": {"key_management_system": "keepass"}})
    assert "general_settings.key_management_system: Input should be 'aws_kms', " \
           "'aws_secret_manager' or 'hashicorp_vault'" in str(caught.value)


def test_store_virtual_keys_is_warned_about_as_not_done(caplog, monkeypatch):
    monkeypatch.setenv("GH_MASTER_KEY", STRONG_KEY)
    with caplog.at_level(logging.WARNING, "gatehouse.config"):
        config_from_dict({"general_settings": {
            "key_management_system": "hashicorp_vault",
            "key_management_settings": {"store_virtual_keys": True,
                                        "access_mode": "write_only"},
            "master_key": "os.environ/GH_MASTER_KEY"}})
    assert [r.getMessage() for r in caplog.records] == [
        "general_settings.key_management_settings.store_virtual_keys: gatehouse does not "
        "write generated keys to a key manager; ignored"]
