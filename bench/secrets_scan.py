"""How fast the ``hide-secrets`` scanner gets through chat text, against detect-secrets' own
line scanning of the same text, in the same run.

It generates realistic chat messages (prose, markdown, code in several languages, logs, JSON,
URLs, ids, hashes; deterministic for a seed), twice: clean, and with a secret in about one
message in twenty. Each is scanned message by message, as the guardrail does:

* ``gatehouse-secrets``: one Scanner with the default plugin set, built once;
* ``detect-secrets``: ``scan_line`` on every line, under settings naming the same detect-secrets
  plugins (it has no notion of a multi-line text), on a smaller sample because it is slow.

Last, the scanner's slowest rate on text crafted to make regexes backtrack (one trigger repeated
thousands of times in a row), which must stay linear.

Rates are MB of text per second of CPU time of this single-threaded process, the best of a few
runs, so a busy machine moves them less than wall-clock rates; the ratio is taken on the same
sample for both.

    python bench/secrets_scan.py                 # 8 MB for the scanner, 256 KB for both
    python bench/secrets_scan.py --mb 32 --sample-kb 512 --seed 7
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from detect_secrets.core.scan import scan_line
from detect_secrets.settings import transient_settings
from gatehouse_secrets.catalogue import OWN_PLUGINS, build_detectors, default_plugins
from gatehouse_secrets.scanner import Scanner

from benchkit import (
    Table,
    add_text_options,
    arguments,
    best_cpu_seconds,
    count,
    cpu_seconds,
    megabytes,
    positive,
)

_WORD_GROUPS = (
    "the a an of to in and or but if then when while because so that this these those it its",
    "we you they our your their is are was were be been being have has had do does did can",
    "could should would will may might must not no yes also just only very more most less",
    "request response server client model prompt token tokens latency cache queue retry error",
    "timeout config deploy build test tests function class method value values list dict map",
    "string number file files path folder branch commit merge review release version update",
    "user users team teams account billing invoice customer order orders price report data",
    "table query index database schema migration column row key keys field fields record",
    "please thanks sorry help explain show write fix add remove change rename move compare",
    "why how what which where who quickly slowly carefully again later today tomorrow before",
    "after during between across against within without about around over under through",
)
WORDS = [word for group in _WORD_GROUPS for word in group.split()]

LANG = ["python", "javascript", "yaml", "bash", "json", "go"]


def sentence(r: random.Random) -> str:
    words = [r.choice(WORDS) for _ in range(r.randint(6, 24))]
    if r.random() < 0.3:
        words.insert(r.randrange(len(words)), r.choice(["`retry_count`", "v2.3.1", "#4821",
                                                       "42 ms", "3.5x", "`None`", "p99"]))
    return " ".join(words).capitalize() + r.choice([".", ".", ".", "?", "!"])


def prose(r: random.Random) -> str:
    return " ".join(sentence(r) for _ in range(r.randint(1, 6)))


def hexid(r: random.Random, n: int) -> str:
    return "".join(r.choice("0123456789abcdef") for _ in range(n))


def uuid(r: random.Random) -> str:
    h = hexid(r, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def code(r: random.Random) -> str:
    n = r.randint(1, 999)
    lang = r.choice(LANG)
    body = {
        "python": f"def load_user_{n}(session, user_id: int, timeout: float = 2.5):\n"
                  f"    row = session.get(User, user_id)\n"
                  f"    if row is None:\n        raise KeyError(f\"no user {{user_id}}\")\n"
                  f"    password = request.form[\"password\"]\n"
                  f"    return {{\"id\": row.id, \"etag\": \"{hexid(r, 16)}\"}}",
        "javascript": f"export async function fetchOrders{n}(client, page = 1) {{\n"
                      f"  const res = await client.get(`/api/orders?page=${{page}}`);\n"
                      f"  if (!res.ok) throw new Error(res.statusText);\n"
                      f"  return res.json().then((d) => d.items.map((o) => o.id));\n}}",
        "yaml": f"service:\n  name: billing-{n}\n  replicas: {r.randint(1, 9)}\n"
                f"  image: registry.example.com/billing:{hexid(r, 7)}\n"
                f"  env:\n    - name: DB_PASSWORD\n      valueFrom: {{secretKeyRef: {{name: db}}}}",
        "bash": f"git checkout -b fix-{n} && git cherry-pick {hexid(r, 40)}\n"
                f"curl -s https://api.example.com/v1/items/{uuid(r)} | jq '.items[] | .id'",
        "json": f"{{\"id\": \"{uuid(r)}\", \"status\": \"ok\","
                f" \"count\": {r.randint(0, 999)}, \"tags\": [\"a\", \"b\"],"
                f" \"updated\": \"2024-05-0{r.randint(1, 9)}T10:30:00Z\"}}",
        "go": f"func handle{n}(w http.ResponseWriter, r *http.Request) {{\n"
              f"\tid := r.URL.Query().Get(\"id\")\n\tif id == \"\" {{\n"
              f"\t\thttp.Error(w, \"missing id\", http.StatusBadRequest)\n\t\treturn\n\t}}\n}}",
    }[lang]
    return f"```{lang}\n{body}\n```"


def log_lines(r: random.Random) -> str:
    return "\n".join(
        f"2024-05-0{r.randint(1, 9)} 10:{r.randint(10, 59)}:{r.randint(10, 59)} "
        f"{r.choice(['INFO', 'WARN', 'ERROR'])} worker-{r.randint(1, 8)} request "
        f"{uuid(r)} took {r.randint(1, 900)} ms (status {r.choice([200, 404, 500])})"
        for _ in range(r.randint(2, 6)))


def markdown(r: random.Random) -> str:
    items = "\n".join(f"- {sentence(r)}" for _ in range(r.randint(2, 5)))
    return (f"## {sentence(r)[:40]}\n\n{items}\n\nSee https://docs.example.com/guide/"
            f"{r.choice(WORDS)}#{r.choice(WORDS)} and call +1 415 555 {r.randint(1000, 9999)}.")


def fake_secret(r: random.Random) -> str:
    def rnd(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(r.choice(alphabet) for _ in range(n))
    return r.choice([
        f"my key is AKIA{rnd(16, string.ascii_uppercase + string.digits)}",
        f"API_KEY = '{rnd(24)}'",
        f"export OPENAI_API_KEY=sk-proj-{rnd(48)}",
        f"use ghp_{rnd(36)} for the push",
        f"password: {rnd(10)}!{r.randint(10, 99)}",
        f"postgres://app:{rnd(14)}@db.internal:5432/main",
        f"token xoxb-{r.randint(10**11, 10**12)}-{r.randint(10**12, 10**13)}-{rnd(24).lower()}",
        f"-----BEGIN RSA PRIVATE KEY-----\n{rnd(64)}\n{rnd(64)}\n-----END RSA PRIVATE KEY-----",
    ])


PARTS: list[Callable[[random.Random], str]] = [prose, prose, prose, code, log_lines, markdown]


def messages(total_bytes: int, seed: int, secret_rate: float) -> list[str]:
    r = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < total_bytes:
        parts = [r.choice(PARTS)(r) for _ in range(r.randint(1, 4))]
        if r.random() < secret_rate:
            parts.insert(r.randrange(len(parts) + 1), fake_secret(r))
        message = "\n\n".join(parts)
        out.append(message)
        size += len(message.encode())
    return out


def rate(texts: list[str], scan: Callable[[str], int], repeat: int) -> tuple[float, int]:
    """MB per CPU second (the best of ``repeat`` runs), and how many texts had a finding."""
    timed = best_cpu_seconds({"scan": lambda: sum(1 for t in texts if scan(t))}, repeat)
    seconds, hits = timed["scan"]
    return megabytes(texts) / seconds, hits


def head(texts: list[str], kb: int) -> list[str]:
    out, size = [], 0
    for t in texts:
        if size >= kb * 1024:
            break
        out.append(t)
        size += len(t.encode())
    return out


#: Text crafted to make regexes backtrack: one trigger repeated in a single run. Scanning it is
#: slower than ordinary text but must stay linear: the rate must not fall as the text grows.
CRAFTED = ["sk-", "eyJ=", "aws", "secret1", "password: '", "key ", "xoxb-1-a1-_",
           "//a/:_authToken="]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--mb", type=positive, default=8, help="text for the scanner (MB)")
    parser.add_argument("--sample-kb", type=count, default=256,
                        help="text both scan, for the ratio (KB)")
    add_text_options(parser, "--repeat")
    args = parser.parse_args()

    seconds, scanner = cpu_seconds(lambda: Scanner(build_detectors(None)))
    print(f"scanner built once in {seconds * 1e3:.0f} ms CPU")
    ds_plugins = [p for p in default_plugins() if p["name"] not in OWN_PLUGINS]

    def ours(text: str) -> int:
        return len(scanner.find(text))

    def theirs(text: str) -> int:
        return sum(1 for line in text.splitlines() for _ in scan_line(line))

    table = Table("<14", " >10", " >8", " >13")
    table.row("text", "scanner", "MB/s", "messages hit")
    for label, secret_rate in (("clean", 0.0), ("5% secrets", 0.05)):
        texts = messages(int(args.mb * 1e6), args.seed, secret_rate)
        sample = head(texts, args.sample_kb)
        big, _ = rate(texts, ours, args.repeat)
        mine, my_hits = rate(sample, ours, args.repeat)
        with transient_settings({"plugins_used": ds_plugins}):
            slow, their_hits = rate(sample, theirs, args.repeat)
        table.row(label, "ours", f"{big:.2f}", "", tail=f"  ({args.mb:g} MB)")
        table.row("", "ours", f"{mine:.2f}", my_hits, tail=f"  ({args.sample_kb} KB sample)")
        table.row("", "detect-s.", f"{slow:.3f}", their_hits, tail="  (same sample)")
        # The x hangs past the column, so the ratio lines up with the rates above it.
        table.row("", "ratio", f"{mine / slow:.0f}", tail="x")
    slowest, piece = min((rate([p * (200_000 // len(p))], ours, 1)[0], p) for p in CRAFTED)
    small, _ = rate([piece * (20_000 // len(piece))], ours, args.repeat)
    table.row("crafted", "ours", f"{slowest:.2f}", "",
              tail=f"  ({piece!r} repeated, 200 KB; {small:.2f} at 20 KB)")


if __name__ == "__main__":
    main()
