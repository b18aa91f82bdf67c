"""Vendor token formats that detect-secrets has no plugin for, as plugins of our own.

Each format is the vendor's documented one: a fixed prefix or signature, then the alphabet and
length of the random part. Where the length is fixed, the token must not run on into more token
characters, so that a longer word that merely starts like a token is not taken for one.

A trigger need only be part of every match, not its prefix. The prefilter stops at every
character that some trigger starts with, so each trigger starts with a character others start
with already, or a rare one: "a29." rather than "ya29.", "f_" rather than "hf_". A new common
first character would slow the scan of all text, clean text included.
"""

from __future__ import annotations

import re

from .detector import Detector

_B64URL = "A-Za-z0-9_-"
# Azure's secrets allow '~' and '.' as well.
_AZURE = "A-Za-z0-9_~.-"
# A current Mailgun key, captured.
_MAILGUN_KEY = r"(?<![0-9A-Za-z])([0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8})(?![0-9A-Za-z])"


def _random_letters(match: re.Match[str], value: str) -> bool:
    # Hugging Face tokens are 34 random letters, about half of them capitals; a long name that
    # happens to follow "hf_" (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) has few of one kind. Fewer
    # than 8 of either in a real token is about 1 in 1,000.
    letters = value[value.rindex("_") + 1:]
    upper = sum(c.isupper() for c in letters)
    return min(upper, len(letters) - upper) >= 8


#: Plugins of our own, for formats detect-secrets has no plugin for. No options.
OWN_PLUGINS: dict[str, list[Detector]] = {
    # API keys (api03), Admin API keys (admin01), OAuth access and refresh tokens (oat01, ort01).
    "AnthropicDetector": [Detector(
        "Anthropic API Key", re.compile(rf"sk-ant-[a-z]{{3,5}}\d\d-[{_B64URL}]{{32,}}"),
        triggers=("sk-ant-",))],
    "AzureDetector": [
        # Entra ID (Azure AD) client secrets: 40 characters, "<digit>Q~" after the third.
        Detector("Azure Entra Client Secret",
                 re.compile(rf"[{_AZURE}]{{3}}\dQ~[{_AZURE}]{{31,34}}"), triggers=("q~",)),
        # Keys of Azure OpenAI, AI services, Search, ...: 84 characters with "JQQJ9" at 52.
        Detector("Azure API Key",
                 re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{52}JQQJ9[A-Za-z0-9]{27}"
                            r"(?:[A-Za-z0-9]{2}==)?(?![A-Za-z0-9])"),
                 triggers=("qqj9",)),
        # Service Bus, Event Hubs and IoT Hub connection strings.
        Detector("Azure Shared Access Key",
                 re.compile(r"(?i:SharedAccessKey)=([A-Za-z0-9+/]{40,86}={0,2})"),
                 groups=(1,), triggers=("sharedaccesskey=",)),
        # The signature of a shared access signature (SAS) URL or token: the URL is the key.
        Detector("Azure SAS Token", re.compile(r"[?&;]sig=([A-Za-z0-9%+/]{40,}={0,2})"),
                 groups=(1,), triggers=("sig=",)),
    ],
    "DatabricksDetector": [Detector(
        "Databricks Token", re.compile(r"dapi[0-9a-f]{32}(?:-\d)?(?![0-9A-Za-z])"),
        triggers=("dapi",))],
    # Personal access, OAuth access and OAuth refresh tokens.
    "DigitalOceanDetector": [Detector(
        "DigitalOcean Token", re.compile(r"do[opr]_v1_[0-9a-f]{64}(?![0-9A-Za-z])"),
        triggers=("dop_v1_", "doo_v1_", "dor_v1_"))],
    "GoogleApiKeyDetector": [Detector(
        "Google API Key", re.compile(rf"AIza[{_B64URL}]{{35}}(?![{_B64URL}])"),
        triggers=("aiza",))],
    "GoogleOAuthDetector": [
        Detector("Google OAuth Client Secret",
                 re.compile(rf"GOCSPX-[{_B64URL}]{{24,}}"),
                 triggers=("gocspx-",)),
        # Access tokens (service accounts' have dots: ya29.c.…, but never end on one), and
        # refresh tokens.
        Detector("Google OAuth Token",
                 re.compile(rf"ya29\.[.{_B64URL}]{{29,}}[{_B64URL}]|1//0[{_B64URL}]{{40,}}"),
                 triggers=("a29.", "//0")),
    ],
    # User access tokens, and the older organisation API tokens.
    "HuggingFaceDetector": [Detector(
        "Hugging Face Token", re.compile(r"(?:hf|api_org)_[A-Za-z]{34}(?![A-Za-z0-9_])"),
        triggers=("f_", "api_org_"), accept=_random_letters)],
    # Legacy "key-" keys anywhere. Current keys, 32 hex digits then the key id (8 and 8), have
    # no prefix: only on a line that names Mailgun, as a bare run of hex digits could be
    # anything, and looking for one on every line would cost a pass over all text.
    "MailgunDetector": [
        Detector("Mailgun API Key", re.compile(r"key-[0-9a-f]{32}(?![0-9A-Za-z])"),
                 triggers=("key-",)),
        Detector("Mailgun API Key",
                 re.compile(rf"(?i:mailgun)[^\n]{{0,200}}?{_MAILGUN_KEY}"
                            rf"|{_MAILGUN_KEY}[^\n]{{0,200}}?(?i:mailgun)"),
                 groups=(1, 2), triggers=("ailgun",)),
    ],
    # Admin API (public, custom, legacy private and unlisted apps) tokens and shared secrets.
    "ShopifyDetector": [Detector(
        "Shopify Token", re.compile(r"shp(?:at|ca|pa|ss|ua)_[0-9a-fA-F]{32}(?![0-9A-Za-z])"),
        triggers=("shpat_", "shpca_", "shppa_", "shpss_", "shpua_"))],
}
