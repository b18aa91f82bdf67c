"""``--virtual-key``: the gateway runs with a master key and a SQLite database, and the load
is sent with a virtual key on a team in an organization, so every call goes through the key
lookup and the checks of its team, user and organization. Standard library only."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

from benchkit import BenchError


def master_key() -> str:
    return "sk-bench-" + secrets.token_hex(16)


def _post(base: str, path: str, body: dict, master: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {master}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def virtual_key(base: str, master: str) -> tuple[dict[str, str], str]:
    """Headers carrying a new virtual key, and what it is attached to. The key, its team and
    the organization each have a budget (never reached), so every call's budget checks run. A
    gateway without organizations (an older commit) gets a key on a team alone, and says so."""
    status, org = _post(base, "/organization/new", {"organization_alias": "bench-org",
                                                    "max_budget": 1e9}, master)
    team_body = {"team_id": "bench-team", "max_budget": 1e9}
    where = "a team"
    if status == 200:
        team_body["organization_id"] = org["organization_id"]
        where = "a team in an organization"
    for path, body in (("/team/new", team_body),
                       ("/key/generate", {"team_id": "bench-team", "user_id": "bench-user",
                                          "max_budget": 1e9})):
        status, made = _post(base, path, body, master)
        if status != 200:
            raise BenchError(f"{path} answered HTTP {status}")
    return {"Authorization": f"Bearer {made['key']}"}, where
