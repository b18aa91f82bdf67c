"""Fake secrets, one or more per plugin of the default set, and text that must stay as it is.

The values are made up (or are the vendors' own documentation examples); each matches its
plugin's format so the scanner has something to find. A test that takes ``sample`` runs once per
secret, one that takes ``innocent_text`` once per harmless text.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from gatehouse_secrets.catalogue import build_detectors
from gatehouse_secrets.scanner import Scanner

PEM_BODY = (
    "MIIEowIBAAKCAQEAvFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfakeFAKEfake0123\n"
    "4567abcdEFGHijklMNOPqrstUVWXyz0123456789+/FAKEfakeFAKEfakeFAKEfake==\n"
)
PEM_BLOCK = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"

#: A secret access key: AWS's documentation example.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#: 95 characters of base64url, the random part of an Anthropic key.
ANTHROPIC_BODY = "FAKEfake0123456789_FAKE-fake" * 3 + "FAKEfake0AA"
#: A Slack browser-session token.
SLACK_CLIENT_TOKEN = "xoxc-1234567890-1234567890123-1234567890123-" + "f00dfeed" * 8
#: An Azure "identifiable" key: 52 characters, the JQQJ9 signature, 27 more.
AZURE_API_KEY = "FAKEfake01" * 5 + "Ab" + "JQQJ99" + "ALFAKEfake0123456789fake01"

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4g"
       "RG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")

#: plugin name -> (secret type, text holding a secret, the secret itself)
SAMPLES_BY_PLUGIN: dict[str, list[tuple[str, str, str]]] = {
    "AnthropicDetector": [
        ("Anthropic API Key", f"Claude says 401 with sk-ant-api03-{ANTHROPIC_BODY} as the key",
         f"sk-ant-api03-{ANTHROPIC_BODY}"),
        ("Anthropic API Key", f"the admin key sk-ant-admin01-{ANTHROPIC_BODY} was rotated",
         f"sk-ant-admin01-{ANTHROPIC_BODY}"),
        ("Anthropic API Key", f"setup-token printed sk-ant-oat01-{ANTHROPIC_BODY}, now what?",
         f"sk-ant-oat01-{ANTHROPIC_BODY}"),
    ],
    "AWSKeyDetector": [
        ("AWS Access Key", "my access key id is AKIAIOSFODNN7EXAMPLE ok", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS Access Key", f'aws_key = "{AWS_SECRET}"', AWS_SECRET),
        ("AWS Access Key", f"in my .env: AWS_KEY={AWS_SECRET} and the region", AWS_SECRET),
        ("AWS Access Key", f"credentials:\n  aws_access_key: {AWS_SECRET}\n", AWS_SECRET),
    ],
    "ArtifactoryDetector": [
        ("Artifactory Credentials", "artifactory token: AKCp8kqFAKEfake1234 and more",
         "AKCp8kqFAKEfake1234"),
    ],
    "AzureStorageKeyDetector": [
        ("Azure Storage Account access key",
         "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "Fak3" * 22,
         "Fak3" * 22),
    ],
    "AzureDetector": [
        ("Azure Entra Client Secret",
         "the app registration's client secret Fk38Q~FAKE.fake_0123456789~FAKEfake-0123 expired",
         "Fk38Q~FAKE.fake_0123456789~FAKEfake-0123"),
        ("Azure API Key", f"our Azure OpenAI key {AZURE_API_KEY} stopped working",
         AZURE_API_KEY),
        ("Azure Shared Access Key",
         "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
         "SharedAccessKey=FAKEfake0123456789FAKEfake0123456789FAKEfak=",
         "FAKEfake0123456789FAKEfake0123456789FAKEfak="),
        ("Azure SAS Token",
         "get it from https://acme.blob.core.windows.net/backups/db.bak?sv=2022-11-02&ss=b&sp=r"
         "&se=2025-06-01T00:00:00Z&sig=FAKEfake0123456789FAKEfake0123456789%2BFAKE%3D today",
         "FAKEfake0123456789FAKEfake0123456789%2BFAKE%3D"),
    ],
    "BasicAuthDetector": [
        ("Basic Auth Credentials", "connect to postgres://admin:s3cr3tPa55@db.internal:5432/app",
         "s3cr3tPa55"),
    ],
    "CloudantDetector": [
        ("Cloudant Credentials", "cloudant_password='" + "0a1b2c3d" * 8 + "'", "0a1b2c3d" * 8),
    ],
    "DatabricksDetector": [
        ("Databricks Token", "the job runs with dapi" + "f00dfeed" * 4 + " as its token",
         "dapi" + "f00dfeed" * 4),
        ("Databricks Token", "rotated to dapi" + "0a1b2c3d" * 4 + "-2 yesterday",
         "dapi" + "0a1b2c3d" * 4 + "-2"),
    ],
    "DigitalOceanDetector": [
        ("DigitalOcean Token", "doctl auth init -t dop_v1_" + "0a1b2c3d" * 8 + " worked",
         "dop_v1_" + "0a1b2c3d" * 8),
        ("DigitalOcean Token", "the OAuth app got doo_v1_" + "f00dfeed" * 8 + " back",
         "doo_v1_" + "f00dfeed" * 8),
    ],
    "DiscordBotTokenDetector": [
        ("Discord Bot Token",
         "bot token MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
         "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"),
        ("Discord Bot Token",
         "client.run('MTEwMjQ4NzYyNTQ4MzQ1ODc3OA.GxFAKE.FAKEfake0123456789FAKEfake0123456789ab')",
         "MTEwMjQ4NzYyNTQ4MzQ1ODc3OA.GxFAKE.FAKEfake0123456789FAKEfake0123456789ab"),
        ("Discord Bot Token",
         "post to https://discord.com/api/webhooks/1234567890123456789/" + "FAKEfake01" * 7
         + " on deploy", "FAKEfake01" * 7),
    ],
    "GitHubTokenDetector": [
        ("GitHub Token", "use ghp_FAKEfake0123456789FAKEfake0123456789 to push",
         "ghp_FAKEfake0123456789FAKEfake0123456789"),
        ("GitHub Token", "github_pat_11FAKEFAKE0fake1234567_abcdefFAKEfakeFAKEfake0123456789",
         "github_pat_11FAKEFAKE0fake1234567_abcdefFAKEfakeFAKEfake0123456789"),
        ("GitHub Token", "the OAuth app returned gho_FAKEfake0123456789FAKEfake0123456789",
         "gho_FAKEfake0123456789FAKEfake0123456789"),
        ("GitHub Token", "user-to-server ghu_FAKEfake0123456789FAKEfake0123456789 token",
         "ghu_FAKEfake0123456789FAKEfake0123456789"),
        ("GitHub Token", "the installation token ghs_FAKEfake0123456789FAKEfake0123456789",
         "ghs_FAKEfake0123456789FAKEfake0123456789"),
        ("GitHub Token", "refresh with ghr_" + "FAKEfake0123456789_" * 4 + " please",
         "ghr_" + "FAKEfake0123456789_" * 4),
    ],
    "GitLabTokenDetector": [
        ("GitLab Token", "GITLAB_TOKEN is glpat-FAKEfake0123456789ab right",
         "glpat-FAKEfake0123456789ab"),
        ("GitLab Token", "a routable one: glpat-" + "FAKEfake0123456789" * 4 + ".01.0z1fake9x ok",
         "glpat-" + "FAKEfake0123456789" * 4 + ".01.0z1fake9x"),
        ("GitLab Token", "the Unleash client uses glffct-FAKEfake0123456789ab for flags",
         "glffct-FAKEfake0123456789ab"),
    ],
    "GoogleApiKeyDetector": [
        ("Google API Key", "maps key AIzaSyFAKEfake0123456789FAKEfake0123456 here",
         "AIzaSyFAKEfake0123456789FAKEfake0123456"),
    ],
    "GoogleOAuthDetector": [
        ("Google OAuth Client Secret", "client secret GOCSPX-FAKEfake0123456789FAKEfake01 in it",
         "GOCSPX-FAKEfake0123456789FAKEfake01"),
        ("Google OAuth Token", "Authorization: Bearer ya29.a0AfB_by" + "FAKEfake0123456789" * 6,
         "ya29.a0AfB_by" + "FAKEfake0123456789" * 6),
        ("Google OAuth Token", "a service account's ya29.c.c0ASRK0G" + "FAKEfake-0123456789" * 6
         + ".", "ya29.c.c0ASRK0G" + "FAKEfake-0123456789" * 6),
        ("Google OAuth Token", "the refresh token is 1//0gFAKEfake0123456789FAKEfake0123456789"
         "FAKEfake-0123 for offline access",
         "1//0gFAKEfake0123456789FAKEfake0123456789FAKEfake-0123"),
    ],
    "HuggingFaceDetector": [
        ("Hugging Face Token", "hf login --token hf_FAKEfakeFAKEfakeFAKEfakeFAKEfakeFA",
         "hf_FAKEfakeFAKEfakeFAKEfakeFAKEfakeFA"),
        ("Hugging Face Token", "old org token api_org_fakeFAKEfakeFAKEfakeFAKEfakeFAKEfa leaked",
         "api_org_fakeFAKEfakeFAKEfakeFAKEfakeFAKEfa"),
    ],
    "IbmCloudIamDetector": [
        ("IBM Cloud IAM Key", "ibm_cloud_iam_key: 'FAKEfake0123456789FAKEfake0123456789FAKE_-ab'",
         "FAKEfake0123456789FAKEfake0123456789FAKE_-ab"),
    ],
    "IbmCosHmacDetector": [
        ("IBM COS HMAC Credentials", "cos_hmac_secret_access_key = '" + "f00dfeed" * 6 + "'",
         "f00dfeed" * 6),
    ],
    "JwtTokenDetector": [("JSON Web Token", f"Authorization: Bearer {JWT}", JWT)],
    "KeywordDetector": [
        ("Secret Keyword", "Hey, how's it going, API_KEY = 'sk_1234567890abcdef'",
         "sk_1234567890abcdef"),
        ("Secret Keyword", "my open ai key? openai_api_key=sk-1234998222", "sk-1234998222"),
        ("Secret Keyword", "db:\n  password: Tr0ub4dor&3\n", "Tr0ub4dor&3"),
        ("Secret Keyword", '{"client_secret": "a long passphrase with spaces"}',
         "a long passphrase with spaces"),
        ("Secret Keyword", "export DATABASE_PASSWORD=hunter2hunter2", "hunter2hunter2"),
    ],
    "MailgunDetector": [
        ("Mailgun API Key", "mailgun's legacy key-" + "0a1b2c3d" * 4 + " still works",
         "key-" + "0a1b2c3d" * 4),
        ("Mailgun API Key", "MAILGUN key " + "f00dfeed" * 4 + "-0fa4e001-0fa4e002 for sending",
         "f00dfeed" * 4 + "-0fa4e001-0fa4e002"),
    ],
    "MailchimpDetector": [
        ("Mailchimp Access Key", "mailchimp: 0123abcdfake4567efghfake89ijklmn-us12",
         "0123abcdfake4567efghfake89ijklmn-us12"),
    ],
    "NpmDetector": [
        ("NPM tokens", "//registry.npmjs.org/:_authToken=npm_FAKEfake0123456789FAKEfake0123",
         "npm_FAKEfake0123456789FAKEfake0123"),
        ("NPM tokens", "publish with NODE_AUTH_TOKEN npm_FAKEfake0123456789FAKEfake0123456789 set",
         "npm_FAKEfake0123456789FAKEfake0123456789"),
    ],
    "OpenAIDetector": [
        ("OpenAI Token", "key sk-FAKEfake0123456789FAKET3BlbkFJFAKEfake0123456789FAKE ok",
         "sk-FAKEfake0123456789FAKET3BlbkFJFAKEfake0123456789FAKE"),
        ("OpenAI Token", "OPENAI key: sk-proj-FAKEfake0123456789_FAKE-fake0123456789FAKEfake",
         "sk-proj-FAKEfake0123456789_FAKE-fake0123456789FAKEfake"),
        ("OpenAI Token", "the bot uses sk-svcacct-FAKEfake0123456789_FAKE-fake0123456789FAKEfake",
         "sk-svcacct-FAKEfake0123456789_FAKE-fake0123456789FAKEfake"),
        ("OpenAI Token", "admin key sk-admin-FAKEfake0123456789_FAKE-fake0123456789FAKEfake ok",
         "sk-admin-FAKEfake0123456789_FAKE-fake0123456789FAKEfake"),
        ("OpenAI Token", "an old sk-None-FAKEfake0123456789_FAKE-fake0123456789FAKEfake key",
         "sk-None-FAKEfake0123456789_FAKE-fake0123456789FAKEfake"),
    ],
    "PrivateKeyDetector": [("Private Key", f"here is my key:\n{PEM_BLOCK}\nthanks", PEM_BLOCK)],
    "PypiTokenDetector": [
        ("PyPI Token", "pypi-AgEIcHlwaS5vcmc" + "FAKEfake01" * 7,
         "pypi-AgEIcHlwaS5vcmc" + "FAKEfake01" * 7),
    ],
    "SendGridDetector": [
        ("SendGrid API Key",
         "SG.FAKEfake0123456789FAKE.FAKEfake0123456789FAKEfake0123456789FAKEfak",
         "SG.FAKEfake0123456789FAKE.FAKEfake0123456789FAKEfake0123456789FAKEfak"),
    ],
    "ShopifyDetector": [
        ("Shopify Token", "X-Shopify-Access-Token: shpat_" + "f00dfeed" * 4,
         "shpat_" + "f00dfeed" * 4),
        ("Shopify Token", "the app's shared secret is shpss_" + "0A1B2C3D" * 4 + ", rotate it",
         "shpss_" + "0A1B2C3D" * 4),
    ],
    "SlackDetector": [
        ("Slack Token", "token xoxb-123456789012-1234567890123-FAKEfakeFAKEfake0123",
         "xoxb-123456789012-1234567890123-FAKEfakeFAKEfake0123"),
        ("Slack Token", "hook https://hooks.slack.com/services/TFAKE0123/BFAKE4567/FAKEfake0123456789",
         "https://hooks.slack.com/services/TFAKE0123/BFAKE4567/FAKEfake0123456789"),
        ("Slack Token", f"the browser sends {SLACK_CLIENT_TOKEN} and", SLACK_CLIENT_TOKEN),
        ("Slack Token", "cookie d=xoxd-FAKEfake0123456789%2BFAKEfake%2F0123456789FAKE%3D; path",
         "xoxd-FAKEfake0123456789%2BFAKEfake%2F0123456789FAKE%3D"),
        ("Slack Token", "workflow hook https://hooks.slack.com/workflows/TFAKE0123/AFAKE4567/"
         "123456789012345678/FAKEfake0123456789",
         "https://hooks.slack.com/workflows/TFAKE0123/AFAKE4567/123456789012345678/"
         "FAKEfake0123456789"),
    ],
    "SoftlayerDetector": [
        ("SoftLayer Credentials", "softlayer_api_key = '" + "abcd0123fake4567" * 4 + "'",
         "abcd0123fake4567" * 4),
    ],
    "SquareOAuthDetector": [
        ("Square OAuth Secret", "sq0csp-FAKEfake0123456789FAKEfake0123456789FAKEfak",
         "sq0csp-FAKEfake0123456789FAKEfake0123456789FAKEfak"),
    ],
    "StripeDetector": [
        ("Stripe Access Key", "charge with sk_live_FAKEfake0123456789FAKEfake please",
         "sk_live_FAKEfake0123456789FAKEfake"),
        ("Stripe Access Key", "test mode: sk_test_FAKEfake0123456789FAKE",
         "sk_test_FAKEfake0123456789FAKE"),
        ("Stripe Access Key", "restricted rk_live_FAKEfake0123456789FAKEfake here",
         "rk_live_FAKEfake0123456789FAKEfake"),
        ("Stripe Access Key", "STRIPE webhook whsec_FAKEfake0123456789FAKEfake01234567 signs it",
         "whsec_FAKEfake0123456789FAKEfake01234567"),
    ],
    "TelegramBotTokenDetector": [
        ("Telegram Bot Token", "bot 123456789:AAFAKEfake0123456789FAKEfake0123456 online",
         "123456789:AAFAKEfake0123456789FAKEfake0123456"),
    ],
    "TwilioKeyDetector": [
        ("Twilio API Key", "twilio SK" + "0fake1fake2fake3fake4fake5fake6f" + " done",
         "SK" + "0fake1fake2fake3fake4fake5fake6f"),
    ],
}

#: Text people send that holds no secret and must reach the model unchanged, by kind. Several
#: look like secrets to a careless pattern: ids and hashes have the length and alphabet of
#: tokens, code names variables after vendors (hf_, npm_, aws_), and URLs have '@' and ':'.
INNOCENT_BY_KIND: dict[str, list[str]] = {
    "prose": [
        "Reset your password: click the link in the email.",
        "The secret: always write the tests first.",
        "A password manager keeps your secrets safe; never reuse a password.",
        "We asked the secretary: she said the meeting moved to 3pm.",
        "Already redacted: API_KEY = '[REDACTED]' and openai_api_key=[REDACTED]",
        "The risk-free rate and the task-based approach both use sk-learn style APIs.",
        "東京の天気は晴れです。パスワードは教えません。",
        "The key-value store and the primary-key constraint both changed in release 7.",
        "Our Discord server and the Slack channel both have the announcement; ping me on Azure "
        "DevOps or Hugging Face if the Databricks job fails.",
        "Set max_tokens: 512 and temperature: 0.2 for this prompt.",
    ],
    "ids and hashes": [
        "The order id is 123e4567-e89b-12d3-a456-426614174000, can you check it?",
        "Ids 550E8400-E29B-41D4-A716-446655440000 and 550e8400e29b41d4a716446655440000 match.",
        "The regression came in with commit 3f786850e387550fdab836ed7e6dc881de23001b last week.",
        "git cherry-pick 9fceb02d0ae598e95dc970b74767f19372d61af8 onto the release branch",
        "md5 9e107d9d372bb6826bd81d3542a419d6, sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        "sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        "sha512 07e547d9586f6a73f73fbac0435ed76951218fb7d0c8d788a309d785436bbb642e93a252a954f2391"
        "2547d1e8a3b5ed6e1bfd7097821233fa0538f3db854fee6 is the digest",
        "image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
        'aws_token_sha = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"',
        "ETag: \"d41d8cd98f00b204e9800998ecf8427e-12\" and request id 0a1b2c3d-4e5f-6789",
    ],
    "phone numbers": [
        "Call me at +1 (415) 555-0199 or +44 20 7946 0958 tomorrow.",
        "Office 020 7946 0958, mobile 415.555.0199, Berlin +49 30 901820, Tokyo +81-3-1234-5678.",
    ],
    "code": [
        "def login(username: str, password: str) -> bool:\n    return check(password)",
        "if password == user.password:\n    grant()",
        "password = request.form['password']\napi_key = os.environ['OPENAI_API_KEY']",
        "api_key = settings.OPENAI_API_KEY\nsecret = get_secret('db')",
        "DB_PASSWORD=${DB_PASSWORD}\nAPI_KEY=<your-api-key>",
        'config = {"password": "", "api_key": None}',
        "cd /home/me && pwd: /home/me",
        "from huggingface_hub import hf_hub_download\n"
        "path = hf_hub_download(repo_id=\"gpt2\", filename=\"config.json\", token=hf_token)",
        "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 = AutoModelForSequenceClassification",
        "console.log(process.env.npm_config_cache, process.env.npm_package_version);",
        'aws_region = "us-east-1"\naws_account_id = "123456789012"\naws_profile = "default"',
        'AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY")',
        "const url = `postgres://${user}:${password}@${host}:5432/${db}`;",
        'dsn = "postgresql://%s:%s@%s/%s" % (user, password, host, name)',
        'dsn = f"postgresql://{user}:{password}@{host}/{name}"',
        'dsn = "mysql://%(user)s:%(password)s@%(host)s/db" % params',
        "engine = create_engine(url)  # Engine(postgresql://scott:***@localhost/test)",
        "SELECT id, email FROM users WHERE id = 42 AND email LIKE '%@example.com';",
        "const total = order.items.reduce((sum, item) => sum + item.price * item.qty, 0);",
    ],
    "urls without passwords": [
        "Visit https://example.com/docs?page=2 or https://github.com/org/repo/pull/42.",
        "See https://example.com/docs/setup#install, http://localhost:8080/health and "
        "https://medium.com/@jane/how-we-ship-3f2a1b",
        "git clone ssh://git@github.com:22/acme/tools.git or git@github.com:acme/tools.git",
        "postgres://app@db.internal:5432/main, redis://localhost:6379/0, amqp://mq.internal/vhost",
        "http://[2001:db8::1]:8080/status and "
        "https://api.example.com:8443/v1?next=/login&email=ann@example.com",
        "ftp://ftp.example.com/pub/file.tar.gz, mailto:ann@example.com, https://user@example.com/",
    ],
    "version strings": [
        "Version 1.2.3 was released on 2024-05-01 at 10:30:00 UTC.",
        "Upgrade from v1.2.3 to 1.3.0-rc.1+build.5678; needs python>=3.11 and node@20.11.1.",
        "npm i @types/node@20.11.5; pip install torch==2.3.1+cu121 numpy==1.26.4",
        "go get example.com/mod@v0.0.0-20240501103000-3f786850e387 and Chrome 124.0.6367.91",
    ],
}
INNOCENT = [text for texts in INNOCENT_BY_KIND.values() for text in texts]
INNOCENT_IDS = [f"{kind}-{i}" for kind, texts in INNOCENT_BY_KIND.items()
                for i in range(len(texts))]


class Sample(NamedTuple):
    plugin: str
    secret_type: str
    text: str
    secret: str


SAMPLES = [Sample(plugin, *sample) for plugin, samples in SAMPLES_BY_PLUGIN.items()
           for sample in samples]


def pytest_generate_tests(metafunc: Any) -> None:
    if "sample" in metafunc.fixturenames:
        metafunc.parametrize("sample", SAMPLES,
                             ids=[f"{s.plugin}-{i}" for i, s in enumerate(SAMPLES)])
    if "innocent_text" in metafunc.fixturenames:
        metafunc.parametrize("innocent_text", INNOCENT, ids=INNOCENT_IDS)


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    """A scanner with the default plugin set."""
    return Scanner(build_detectors(None))


@pytest.fixture
def all_samples() -> list[Sample]:
    return SAMPLES


@pytest.fixture
def all_innocent() -> list[str]:
    return INNOCENT


@pytest.fixture
def pem_block() -> str:
    return PEM_BLOCK


@pytest.fixture
def pem_body() -> str:
    return PEM_BODY


@pytest.fixture
def jwt() -> str:
    return JWT
