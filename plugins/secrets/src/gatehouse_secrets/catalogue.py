"""From a detect-secrets plugin list to the detectors the scanner runs.

``detect_secrets_config`` has the shape detect-secrets uses for ``plugins_used``: a list of
``{"name": PluginClassName, **options}``, optionally with ``"path": "file://..."`` for a plugin
class kept in a local file. Regex plugins contribute their own denylists; where a denylist finds
only part of a secret (a JWT without its signature, a PEM header without the key) or misses a
current format of the same vendor, extra patterns of the same secret type are added. The
keyword and entropy plugins are rebuilt from their options (see :mod:`.keyword`), since their
own scanning runs through detect-secrets' per-file settings machinery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import product
from pathlib import Path
from typing import Any, NamedTuple

from detect_secrets.core.plugins.util import (
    get_mapping_from_secret_type_to_class,
    get_plugins_from_file,
)
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import KeywordDetector

from .detector import Detector
from .keyword import is_mask, keyword_detectors
from .vendors import OWN_PLUGINS

#: Plugins left out of the default set: public IPs are not secrets, and the entropy plugins
#: take git SHAs, UUIDs and hashes in ordinary code for secrets. All can be named explicitly.
NOT_BY_DEFAULT = frozenset({"IPPublicDetector", "Base64HighEntropyString",
                            "HexHighEntropyString"})

_TOKEN = "A-Za-z0-9_-"


class _Extra(NamedTuple):
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    groups: tuple[int, ...] = (0,)
    multiline: bool = False
    gate: re.Pattern[str] | None = None


def _jwt_is_valid(match: re.Match[str], value: str) -> bool:
    return JwtTokenDetector.is_formally_valid(value)


def _combos(*parts: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({"".join(p) for p in product(*parts)}))


_KEY_WORDS = ("key", "pw", "pass", "token")  # "pwd", "password" contain "pw", "pass"

#: For each plugin, lowercase literals that every match of every one of its denylist patterns
#: contains. Plugins not listed here nor in _GATES run on every text (Twilio: its "AC" and "SK"
#: would wake it on nearly every line, and its patterns start with them, so running it is cheap).
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "AWSKeyDetector": ("a3t", "abia", "acca", "akia", "asia", "aws"),
    "ArtifactoryDetector": ("akc", *(f"ap{c}" for c in "0123456789abcdef")),
    "AzureStorageKeyDetector": ("accountkey=",),
    "CloudantDetector": ("cloudant.com", *_combos(("cloudant", "cl", "clou"), ("", "_", "-"),
                                                  ("", "api"), _KEY_WORDS)),
    "GitHubTokenDetector": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "GitLabTokenDetector": ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "gr1348941", "glcbt-",
                            "glimt-", "glptt-", "glagent-", "gloas-"),
    "IbmCloudIamDetector": _KEY_WORDS,  # its name prefix is optional: any "key = ..." may match
    "IbmCosHmacDetector": ("secret",),
    "IPPublicDetector": tuple(f"{d}." for d in "0123456789"),
    "JwtTokenDetector": ("eyj",),
    "MailchimpDetector": ("-us",),
    "NpmDetector": ("_authtoken=",),
    "OpenAIDetector": ("sk-",),
    "PrivateKeyDetector": ("private key", "putty-user-key-file-2"),
    "PypiTokenDetector": ("pypi-ag",),
    "SendGridDetector": ("sg.",),
    "SlackDetector": ("xox", ".slack.com"),
    "SoftlayerDetector": ("softlayer", *_combos(("sl",), ("", "_", "-"), ("", "api"),
                                                ("", "_", "-"), _KEY_WORDS)),
    "SquareOAuthDetector": ("sq0csp-",),
    "StripeDetector": ("_live_",),
}

#: What must follow a trigger for it to wake the plugin, where its words are common in prose
#: ("key", "token"): the rest of the name, an assignment, then the 44-character value.
_AFTER_TRIGGER: dict[str, re.Pattern[str]] = {
    "IbmCloudIamDetector": re.compile(r"[a-z]{0,8}['\"]?\]? *(?:=|:| ) *['\"]?[a-z0-9_-]{44}"),
}

#: Gates for denylist patterns with no literal common to every match.
_GATES: dict[str, re.Pattern[str]] = {
    # Three dot-separated parts: the six-character middle one, dots included.
    "DiscordBotTokenDetector": re.compile(r"\.[a-zA-Z\d_-]{6}\."),
    # "<bot id>:<35 characters>": the colon and what follows it.
    "TelegramBotTokenDetector": re.compile(r":[0-9A-Za-z_-]{35}"),
}

#: Plugins whose denylist patterns capture the secret in group 1 (the rest is the key name,
#: ...). Other plugins' patterns match the secret itself.
_SECRET_IN_GROUP_1 = frozenset({"AWSKeyDetector", "CloudantDetector", "IbmCloudIamDetector",
                                "IbmCosHmacDetector", "IPPublicDetector", "SoftlayerDetector"})

_HEX = re.compile(r"[0-9a-fA-F]+")
# Code builds URLs with printf-style placeholders: "postgres://%s:%s@%s/%s" % (...).
_PRINTF_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[a-z]")


def _not_a_hash(match: re.Match[str], value: str) -> bool:
    # AWS secrets are base64; a name like aws_token_sha holding 40 hex digits is a SHA-1.
    return _HEX.fullmatch(value) is None


def _url_password(match: re.Match[str], value: str) -> bool:
    # Log lines and repr()s mask the password already: Engine(postgresql://scott:***@host/db).
    return _PRINTF_PLACEHOLDER.fullmatch(value) is None and not is_mask(value)


_VALIDATORS = {"AWSKeyDetector": _not_a_hash, "BasicAuthDetector": _url_password,
               "JwtTokenDetector": _jwt_is_valid}

_PEM_BLOCK = re.compile(
    # An unfinished block (a truncated paste, a stream still arriving) runs to the end of the text.
    r"----(?:-|\s)BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?\s?-{4,5}.*?"
    r"(?:-{4,5}\s?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?\s?-{4,5}|\Z)",
    re.DOTALL,
)
_PUTTY_KEY_FILE = re.compile(r"PuTTY-User-Key-File-\d+:.*?(?:Private-MAC:[ \t]*[0-9a-fA-F]+|\Z)",
                             re.DOTALL)

#: Extra patterns per plugin, reported under that plugin's secret type. Triggers are chosen as
#: in :mod:`.vendors`.
_EXTRAS: dict[str, list[_Extra]] = {
    # A secret assigned to an aws-ish name, unquoted too: the denylist needs quotes, and the
    # keyword patterns need "secret", "password", ... in the name (AWS_KEY=... has none). It
    # holds a digit, '/' or '+', as a 40-character base64 string almost always does.
    "AWSKeyDetector": [_Extra(re.compile(
        r"(?i:aws)[\w.-]{0,40}+['\"\]]{0,2}[ \t]{0,16}(?:=>|:=|=|:)[ \t]{0,16}['\"]?"
        r"((?=[A-Za-z]{0,39}[0-9/+])[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"), ("aws",), groups=(1,))],
    # The password of a URL of any scheme (RFC 3986 userinfo "user:password@"). The denylist
    # misses passwords holding the sub-delimiters RFC 3986 allows there (!$&'()*+,;=) and URLs
    # with no user (redis://:pw@host). An e-mail login keeps its '@'; a password may hold an
    # unescaped '@' or ':' (the last '@' ends it). Neither holds what ends an authority.
    "BasicAuthDetector": [_Extra(re.compile(r"://[^\s:/?#\[\]\"'`<>]*+:([^\s/?#\[\]\"'`<>]+)@"),
                                 ("://",), groups=(1,))],
    # Tokens issued since 2022: a longer first part (longer user ids) and signature than the
    # denylist's, which would leave the signature's tail behind. And webhook URLs' tokens.
    "DiscordBotTokenDetector": [
        _Extra(re.compile(r"[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,40}"
                          r"(?![A-Za-z\d_-])"), (),
               gate=_GATES["DiscordBotTokenDetector"]),
        _Extra(re.compile(r"discord(?:app)?\.com/api/webhooks/\d+/([A-Za-z0-9_-]{60,})"),
               ("discord",), groups=(1,)),
    ],
    # The denylist names only the header line; the key is the block under it.
    "PrivateKeyDetector": [_Extra(_PEM_BLOCK, ("private key",), multiline=True),
                           _Extra(_PUTTY_KEY_FILE, ("putty-user-key-file-",), multiline=True)],
    # With its signature, which the denylist's lazy tail leaves out. A token starts a run of
    # base64url characters, or follows a %-escape (Bearer%20eyJ...). Triggered by "yj", not
    # "eyj": the prefilter stops at every character a trigger starts with, and one character
    # in ten is an "e".
    "JwtTokenDetector": [_Extra(re.compile(
        r"eyJ(?:(?<![A-Za-z0-9_-]eyJ)|(?<=%[0-9A-Fa-f]{2}eyJ))[A-Za-z0-9_-]*={0,2}\."
        r"[A-Za-z0-9_-]+={0,2}(?:\.[A-Za-z0-9_+/-]+={0,2})?"), ("yj",))],
    # Legacy, project, service-account and admin keys (all hold a digit: "T3BlbkFJ" does). The
    # look-behind, after the literal so the engine can still skip ahead to "sk-", makes a key
    # start a run of token characters. Anthropic's sk-ant- keys are another vendor's.
    "OpenAIDetector": [_Extra(re.compile(rf"sk-(?<![{_TOKEN}]sk-)(?!ant-)(?=[{_TOKEN}]*[0-9])"
                                         rf"[{_TOKEN}]{{20,}}"), ("sk-",))],
    # Fine-grained tokens, and tokens longer than the 36 characters the denylist stops at
    # (refresh tokens, ghr_, have 76).
    "GitHubTokenDetector": [_Extra(
        re.compile(r"gh[opsru]_[A-Za-z0-9_]{36,}|github_pat_[A-Za-z0-9_]{22,}"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"))],
    # Routable tokens (GitLab 17.x on): a payload longer than the denylist's 50 characters,
    # ending in ".<version>.<checksum>". And the prefixes the denylist lacks.
    "GitLabTokenDetector": [_Extra(
        re.compile(r"gl(?:pat|dt|ft|soat|rtr?|cbt|imt|ptt|agent|oas|ffct)-[A-Za-z0-9_-]{20,}"
                   r"(?:\.\d+\.[A-Za-z0-9]+)?"),
        ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "glrtr-", "glcbt-", "glimt-", "glptt-",
         "glagent-", "gloas-", "glffct-"))],
    # In .npmrc; and anywhere, since npm tokens are prefixed (npm_ and 36 characters).
    "NpmDetector": [_Extra(re.compile(r"_authToken=[ \t]*(npm_[A-Za-z0-9]+|[A-Fa-f0-9-]{36})"),
                           ("_authtoken=",), groups=(1,)),
                    _Extra(re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])"), ("pm_",))],
    # App-level, configuration, browser-session (xoxc) and cookie (xoxd) tokens; workflow and
    # trigger webhooks, which the denylist's services/ pattern does not cover.
    "SlackDetector": [_Extra(re.compile(
        r"xapp-\d-[A-Za-z0-9-]{20,}|xoxe(?:\.xox[a-z])?-\d-[A-Za-z0-9]{20,}"
        r"|xox[cd]-[A-Za-z0-9%+/=-]{20,}"
        r"|https://hooks\.slack\.com/(?:workflows|triggers)/T[A-Za-z0-9_]+/[A-Za-z0-9_/]+"),
        ("xapp-", "xoxe", "xoxc-", "xoxd-", ".slack.com/"))],
    # Test-mode keys, live keys longer than the 24 characters the denylist stops at, and
    # webhook signing secrets.
    "StripeDetector": [_Extra(re.compile(r"[rs]k_(?:live|test)_[0-9a-zA-Z]{10,}"
                                         r"|whsec_[A-Za-z0-9]{24,}"),
                              ("_live_", "_test_", "sec_"))],
}

#: Plugins whose extra patterns above are used instead of their denylist: JWT, npm and OpenAI
#: denylist patterns backtrack quadratically on crafted text (thousands of "sk-" or "eyJ" in one
#: run take seconds to scan, from a single request), and the extras find the same secrets in
#: linear time; basic auth's takes a "%s" placeholder for a password and misses the passwords
#: its extra adds.
_EXTRAS_REPLACE_DENYLIST = frozenset({"BasicAuthDetector", "JwtTokenDetector", "NpmDetector",
                                      "OpenAIDetector"})


def _known_classes() -> list[type[BasePlugin]]:
    return list(get_mapping_from_secret_type_to_class().values())


def default_plugins() -> list[dict[str, Any]]:
    names = {cls.__name__ for cls in _known_classes()}
    return [{"name": name} for name in sorted((names - NOT_BY_DEFAULT) | set(OWN_PLUGINS))]


def resolve_paths(config: Sequence[Mapping[str, Any]], base_dir: Path | None
                  ) -> list[dict[str, Any]]:
    """``config`` with each ``path`` made absolute against the config file's folder."""
    resolved = []
    for entry in config:
        entry = dict(entry)
        path = entry.get("path")
        if isinstance(path, str) and base_dir is not None:
            local = Path(path.removeprefix("file://")).expanduser()
            entry["path"] = "file://" + str(local if local.is_absolute() else base_dir / local)
        resolved.append(entry)
    return resolved


def build_detectors(config: Sequence[Mapping[str, Any]] | None) -> list[Detector]:
    """The detectors for a plugin list (the default set when None). Raises ValueError naming the
    entry at fault."""
    entries = default_plugins() if config is None else config
    if not entries:
        raise ValueError("the plugin list is empty; leave detect_secrets_config out to use "
                         "the default plugins")
    detectors: list[Detector] = []
    for i, entry in enumerate(entries):
        options = dict(entry)
        name = options.pop("name", None)
        if not isinstance(name, str):
            # ValueError, not TypeError: pydantic reports only the former as a config error.
            raise ValueError(  # noqa: TRY004
                f"entry {i}: 'name' (a detect-secrets plugin class name) is required")
        path = options.pop("path", None)
        if name in OWN_PLUGINS and path is None:
            if options:
                raise ValueError(f"entry {i}: {name} takes no options")
            detectors += OWN_PLUGINS[name]
            continue
        cls = _plugin_class(name, path, i)
        try:
            plugin = cls(**options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"entry {i}: {name} does not accept these options: {exc}") from None
        detectors += _detectors_for(plugin, i)
    return detectors


def _plugin_class(name: str, path: Any, i: int) -> type[BasePlugin]:
    if path is None:
        classes: Iterable[type[BasePlugin]] = _known_classes()
    else:
        filename = str(path).removeprefix("file://")
        if not Path(filename).is_file():
            raise ValueError(f"entry {i}: plugin file {filename} not found")
        classes = get_plugins_from_file(filename)
    for cls in classes:
        if cls.__name__ == name:
            return cls
    known = sorted({c.__name__ for c in _known_classes()} | set(OWN_PLUGINS))
    where = f" in {path}" if path is not None else f"; known plugins: {', '.join(known)}"
    raise ValueError(f"entry {i}: no detect-secrets plugin named {name!r}{where}")


def _detectors_for(plugin: BasePlugin, i: int) -> list[Detector]:
    name = type(plugin).__name__
    secret_type = str(plugin.secret_type)
    if isinstance(plugin, KeywordDetector):
        return keyword_detectors(plugin)
    if isinstance(plugin, HighEntropyStringsPlugin):
        return [_entropy_detector(plugin)]
    if not isinstance(plugin, RegexBasedDetector):
        raise ValueError(  # noqa: TRY004 - a config error, as in build_detectors
            f"entry {i}: {name} is not a RegexBasedDetector; only regex plugins can be loaded "
            f"from a file")
    denylist = () if name in _EXTRAS_REPLACE_DENYLIST else plugin.denylist
    detectors = [
        Detector(secret_type, pattern,
                 groups=(1,) if pattern.groups and name in _SECRET_IN_GROUP_1 else (0,),
                 triggers=_TRIGGERS.get(name, ()), after_trigger=_AFTER_TRIGGER.get(name),
                 gate=_GATES.get(name), accept=_VALIDATORS.get(name))
        for pattern in map(re.compile, denylist)
    ]
    detectors += [Detector(secret_type, extra.pattern, groups=extra.groups,
                           triggers=extra.triggers, gate=extra.gate, multiline=extra.multiline,
                           accept=_VALIDATORS.get(name))
                  for extra in _EXTRAS.get(name, ())]
    return detectors


def _entropy_detector(plugin: HighEntropyStringsPlugin) -> Detector:
    # The plugin's own quoted-string regex and entropy measure; quoted only, as detect-secrets
    # scans source files, so prose words are never candidates.
    def accept(match: re.Match[str], value: str) -> bool:
        return plugin.calculate_shannon_entropy(value) > plugin.entropy_limit

    return Detector(str(plugin.secret_type), plugin.regex, groups=(2,), accept=accept)
