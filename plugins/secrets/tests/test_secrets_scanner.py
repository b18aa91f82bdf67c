"""The scanner on its own: what it redacts, what it leaves alone, and how its plugin list is
configured."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from gatehouse_secrets import HideSecretsParams
from gatehouse_secrets.catalogue import build_detectors, default_plugins
from gatehouse_secrets.scanner import Scanner
from pydantic import ValidationError


@pytest.mark.parametrize(("text", "expected"), [
    ("Hey, how's it going, API_KEY = 'sk_1234567890abcdef'",
     "Hey, how's it going, API_KEY = '[REDACTED]'"),
    ("what is the value of my open ai key? openai_api_key=sk-1234998222",
     "what is the value of my open ai key? openai_api_key=[REDACTED]"),
    ("what is the time today, openai_api_key=sk-1234998222",
     "what is the time today, openai_api_key=[REDACTED]"),
])
def test_reference_examples(scanner, text, expected):
    assert scanner.redact(text) == (expected, ["Secret Keyword"])


def test_each_default_plugin_finds_its_format(scanner, sample):
    redacted, types = scanner.redact(sample.text)
    # All of it: a pattern that stops short of a longer token leaves its tail readable.
    for part in (sample.secret[:8], sample.secret[-8:]):
        assert part not in redacted
    assert "[REDACTED]" in redacted
    assert sample.secret_type in types


def test_every_default_plugin_has_a_sample(all_samples):
    # A new detect-secrets release may add a plugin; it then needs a sample in conftest (and a
    # trigger in the catalogue if its pattern does not start with a literal).
    assert {p["name"] for p in default_plugins()} == {s.plugin for s in all_samples}


def test_ordinary_text_and_code_stay_as_they_are(scanner, innocent_text):
    assert scanner.redact(innocent_text) == (innocent_text, [])


def test_the_prefilter_loses_nothing(scanner, all_samples, all_innocent):
    # The same detectors run everywhere, without triggers or gates, must find exactly the same.
    detectors = build_detectors(None)
    ungated = Scanner([dataclasses.replace(d, triggers=(), gate=None) for d in detectors])
    document = "\n".join([*(s.text for s in all_samples), *all_innocent])
    assert scanner.find(document) == ungated.find(document)
    assert len(scanner.find(document)) >= len(all_samples)


def test_the_whole_pem_block_goes_not_only_its_header(scanner, pem_block):
    text = f"Deploy key below.\n{pem_block}\nThat's all."
    redacted, types = scanner.redact(text)
    assert redacted == "Deploy key below.\n[REDACTED]\nThat's all."
    assert types == ["Private Key"]


def test_an_unfinished_pem_block_is_redacted_to_the_end(scanner, pem_body):
    text = f"It got cut off:\n-----BEGIN OPENSSH PRIVATE KEY-----\n{pem_body}"
    assert scanner.redact(text)[0] == "It got cut off:\n[REDACTED]\n"


def test_basic_auth_url_keeps_user_and_host(scanner):
    text = "clone https://deploy:gh0stPa55w0rd@git.example.com/team/repo.git now"
    assert scanner.redact(text)[0] == \
        "clone https://deploy:[REDACTED]@git.example.com/team/repo.git now"


@pytest.mark.parametrize(("url", "password"), [
    ("postgres://admin:pw@db.internal/app", "pw"),
    ("postgres://admin:Xk9$mQ2!vL@db.internal:5432/app", "Xk9$mQ2!vL"),
    ("mysql://root:Sup3r&S3cret@mysql.local:3306/shop", "Sup3r&S3cret"),
    ("mongodb+srv://app:Zx9k+LmQ2=pR@cluster0.ab1cd.mongodb.net/test?retryWrites=true",
     "Zx9k+LmQ2=pR"),
    ("redis://:Redis9*Pass@cache.internal:6379/0", "Redis9*Pass"),
    ("amqps://guest:Rabbit7!pw@mq.internal:5671/vhost", "Rabbit7!pw"),
    ("https://ci-bot:T0ken;2024@git.example.com/team/repo.git", "T0ken;2024"),
    ("ftp://ann@example.com:Ftp5ecret!@ftp.example.com/pub", "Ftp5ecret!"),
    ("sqlserver://sa:P@ssw0rd@127.0.0.1:1433/db", "P@ssw0rd"),
    ("smtps://mailer:M4il+pass,1@smtp.example.com:465", "M4il+pass,1"),
])
def test_the_password_of_a_url_of_any_scheme_goes_and_nothing_else(scanner, url, password):
    redacted, types = scanner.redact(f"it connects with {url} at start-up")
    assert redacted == f"it connects with {url.replace(password, '[REDACTED]')} at start-up"
    assert types == ["Basic Auth Credentials"]


def test_an_anthropic_key_is_not_reported_as_an_openai_one(scanner, all_samples):
    (sample, *_) = [s for s in all_samples if s.plugin == "AnthropicDetector"]
    assert scanner.redact(sample.text)[1] == ["Anthropic API Key"]


@pytest.mark.parametrize("piece", [
    "://a:", "://a@b:c", "aws_k=", "awsA", "hf_", "npm_", "1Q~", "aJQQJ9", "&sig=a", "key-",
    "0123abcd-", "dapi", "sk-ant-api03-a", "ya29..", "1//0", "glpat-a.1.", "ghr_", "xoxd-",
    "M" + "a" * 23 + ".abcdef.", "discord.com/api/webhooks/1/", "SharedAccessKey=", "whsec_",
])
def test_crafted_runs_of_a_trigger_scan_in_linear_time(scanner, piece):
    # Quadratic backtracking over 100 KB would take minutes; linear scanning takes well under
    # a second even on a busy machine.
    text = piece * (100_000 // len(piece))
    started = time.process_time()
    scanner.find(text)
    assert time.process_time() - started < 2


def test_jwt_goes_with_its_signature(scanner, jwt):
    assert scanner.redact(f"token {jwt}.")[0] == "token [REDACTED]."


def test_a_malformed_jwt_lookalike_stays(scanner):
    text = "eyJnotreallyjson.eyJalsonotjson.signature"
    assert scanner.redact(text) == (text, [])


def test_several_secrets_in_one_text_all_go_and_types_are_listed_once(scanner):
    text = ("aws AKIAIOSFODNN7EXAMPLE\npassword: Tr0ub4dor&3\n"
            "again AKIAIOSFODNN7EXAMPLE and ghp_FAKEfake0123456789FAKEfake0123456789")
    redacted, types = scanner.redact(text)
    assert redacted == ("aws [REDACTED]\npassword: [REDACTED]\n"
                        "again [REDACTED] and [REDACTED]")
    assert types == ["AWS Access Key", "GitHub Token", "Secret Keyword"]


def test_redacting_twice_changes_nothing_more(scanner, all_samples):
    text = "\n".join(s.text for s in all_samples)
    once, _ = scanner.redact(text)
    assert scanner.redact(once) == (once, [])


def test_unicode_that_lowercases_longer_does_not_hide_secrets(scanner):
    # "İ" lowercases to two characters, which shifts offsets in the lowered copy.
    heading = "İİİİİ " * 20
    text = f"{heading}\noffice:\npassword: Tr0ub4dor&3\nend"
    assert scanner.redact(text)[0] == f"{heading}\noffice:\npassword: [REDACTED]\nend"


# --- detect_secrets_config ---------------------------------------------------------------------


def scanner_for(config, base_dir: Path | None = None) -> Scanner:
    params = HideSecretsParams.model_validate(
        {"guardrail": "hide-secrets", "detect_secrets_config": config},
        context={"base_dir": base_dir} if base_dir else None)
    return Scanner(build_detectors(params.detect_secrets_config))


def test_the_config_replaces_the_plugin_list(jwt):
    scanner = scanner_for([{"name": "JwtTokenDetector"}])
    text = f"API_KEY = 'sk_1234567890abcdef' and {jwt}"
    assert scanner.redact(text) == ("API_KEY = 'sk_1234567890abcdef' and [REDACTED]",
                                    ["JSON Web Token"])


def test_a_baseline_plugins_used_block_is_accepted_as_is():
    scanner = scanner_for({"plugins_used": [{"name": "AWSKeyDetector"}]})
    assert scanner.redact("AKIAIOSFODNN7EXAMPLE")[0] == "[REDACTED]"


def test_keyword_exclude_skips_matching_lines():
    scanner = scanner_for([{"name": "KeywordDetector", "keyword_exclude": "example"}])
    text = "password: example123\npassword: Tr0ub4dor&3"
    assert scanner.redact(text)[0] == "password: example123\npassword: [REDACTED]"


def test_entropy_plugins_can_be_chosen_with_their_limit():
    sha = "3f786850e387550fdab836ed7e6dc881de23001b"
    text = f'rev = "{sha}"'
    assert scanner_for([{"name": "HexHighEntropyString", "limit": 3.0}]).redact(text)[0] == \
        'rev = "[REDACTED]"'
    assert scanner_for([{"name": "HexHighEntropyString", "limit": 4.0}]).redact(text)[0] == text


def test_a_plugin_class_in_a_file_beside_the_config(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "acme.py").write_text(
        "import re\n"
        "from detect_secrets.plugins.base import RegexBasedDetector\n\n"
        "class AcmeTokenDetector(RegexBasedDetector):\n"
        "    secret_type = 'Acme Token'\n"
        "    denylist = [re.compile(r'acme_[0-9a-f]{16}')]\n")
    scanner = scanner_for([{"name": "AcmeTokenDetector", "path": "file://plugins/acme.py"}],
                          base_dir=tmp_path)
    assert scanner.redact("tok acme_0123456789abcdef!") == ("tok [REDACTED]!", ["Acme Token"])


@pytest.mark.parametrize(("config", "message"), [
    ([{"name": "NoSuchDetector"}], "no detect-secrets plugin named 'NoSuchDetector'"),
    ([{"name": "AWSKeyDetector", "colour": "red"}], "AWSKeyDetector does not accept"),
    ([{"name": "HexHighEntropyString", "limit": 9}], "HexHighEntropyString does not accept"),
    ([{"limit": 3}], "'name' (a detect-secrets plugin class name) is required"),
    ([], "the plugin list is empty"),
    ([{"name": "X", "path": "file://missing.py"}], "missing.py not found"),
])
def test_bad_plugin_lists_are_refused_with_the_entry_named(config, message):
    with pytest.raises(ValidationError, match="detect_secrets_config") as caught:
        scanner_for(config)
    assert message in str(caught.value)
