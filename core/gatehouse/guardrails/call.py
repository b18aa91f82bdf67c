"""What hooks are handed: one call's context and the state of a stream being sent."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aiohttp import web

from .text import Slot

if TYPE_CHECKING:
    import asyncio

    from .monitoring import GuardrailRun

# "moderation" is only made by guardrails asking a model_list model (Models.moderate);
# "pass_through_endpoint" by the routes forwarded to other APIs (proxy/passthrough.py).
CallType = Literal["chat_completion", "completion", "embedding", "moderation",
                   "pass_through_endpoint"]


class TeamChoice(Protocol):
    """The teams a caller calls as, one chosen per call by its model (a JWT naming several:
    access/jwt_auth.Identity)."""

    team_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelGrant:
    """Models a caller is granted beyond its key's and team's lists (a JWT's role or scopes):
    any other is refused with 403 and ``refusal``, whose ``{model}`` names the model asked
    for. Unlike a key's list, an empty one grants nothing."""

    allowed: tuple[str, ...]
    refusal: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. Without virtual keys every caller is the anonymous principal."""

    key_hash: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    # Per-key switches such as {"hide_secrets": False}; a guardrail reads its own.
    permissions: dict[str, Any] = field(default_factory=dict)
    guardrails: tuple[str, ...] = ()
    is_admin: bool = False
    # The key's team forbids its requests to change which guardrails run.
    team_locked: bool = False
    key: dict[str, Any] | None = None
    team: dict[str, Any] | None = None
    # The key's user, the budget of that user's membership of the team, and the team's
    # organization with its budget: the limits above the key's own.
    user: dict[str, Any] | None = None
    member: dict[str, Any] | None = None
    member_budget: dict[str, Any] | None = None
    organization: dict[str, Any] | None = None
    organization_budget: dict[str, Any] | None = None
    # The end user a JWT's claim names: the call is made for them whatever the body says.
    end_user_id: str | None = None
    # Lists of models the caller is held to beyond its team's and user's (a JWT's role and
    # scopes): a model must be in each.
    model_grants: tuple[ModelGrant, ...] = ()
    # Calls and sees every team's team-scoped deployments without being an admin (OPEN).
    all_teams: bool = False
    # A JWT naming several teams (team_ids_jwt_field): its identity, whose teams a model call
    # chooses among once its model is known (CallGate.team_for). None: the team is settled.
    team_choice: TeamChoice | None = None


ANONYMOUS = Principal()
# The gateway's own calls (a guardrail asking a model), and any caller of a gateway without a
# master key, where no caller is told from another and so no team's models are kept from it.
OPEN = Principal(all_teams=True)


@dataclass(slots=True)
class FellBack:
    """A call whose model failed upstream and went to its fallbacks, for the metrics: what
    failed, how, and each fallback called in turn with whether it answered."""

    model: str
    deployment_id: str
    status: int
    error: dict[str, Any]
    tried: list[tuple[str, bool]] = field(default_factory=list)


@dataclass(slots=True)
class Call:
    """One call through the gateway.

    ``body`` is the request as it will be sent upstream, less the gateway's own fields
    (``guardrails``, ``metadata``, ``mock_response``), which are parsed out into the other
    attributes. ``pre_call`` guardrails may rewrite ``body`` in place.
    """

    request_id: str
    call_type: CallType
    model: str
    body: dict[str, Any]
    stream: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    principal: Principal = ANONYMOUS
    client_ip: str | None = None
    # The client's request headers, for a guardrail that passes one on to its vendor (Aim's
    # x-aim-user-email). They hold the caller's credentials: never log or forward them whole.
    headers: Mapping[str, str] = field(default_factory=dict)
    # Set once guardrails are selected: name -> extra_body from the request.
    guardrail_extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Names of the guardrails that reached a verdict on this call, in the order they ran.
    applied_guardrails: list[str] = field(default_factory=list)
    # Every guardrail that ran: "passed", "blocked", "failed_open" or "failed_closed".
    verdicts: dict[str, str] = field(default_factory=dict)
    # The gateway asked the upstream for a stream's usage chunk; the client did not.
    hide_usage: bool = False
    # Headers the reply carries besides the gateway's own: the caller's rate-limit state and
    # the upstream's rate-limit advice.
    response_headers: dict[str, str] = field(default_factory=dict)
    # The upstream's own x-ratelimit-remaining-* values by unit (requests, tokens), for
    # metrics: the reply's headers may carry the gateway's tighter limits instead.
    upstream_remaining: dict[str, str] | None = None
    # The estimated cost held on each budget's spend counter until the call is priced.
    reserved: dict[str, float] | None = None
    # The end user the call is made for (its row and budget), once the gate has looked it up.
    end_user: dict[str, Any] | None = None
    end_user_budget: dict[str, Any] | None = None
    # The end user named by the configured user_header_name header, if any.
    header_user: str | None = None
    # Free space for a guardrail's own per-call state, keyed by guardrail name (e.g. what a
    # masking guardrail replaced in the request, to restore it in the reply). Never logged.
    scratch: dict[str, Any] = field(default_factory=dict)
    # What the call costs whatever its tokens (a pass-through endpoint's cost_per_request);
    # None: priced by its model's tokens.
    cost_per_request: float | None = None
    # The key's parallel-call counter while the call holds one of its slots.
    parallel_slot: str | None = None
    # One record per guardrail and mode that ran on the call (``guardrails.monitoring``), and
    # once the call has ended, one ``not_run`` per guardrail and mode selected but never
    # reached. None until a guardrail runs: a call without guardrails allocates nothing.
    guardrail_runs: list[GuardrailRun] | None = None
    # Guardrail runs going on off the request path (shadows, demoted checks): the call's
    # record waits for them.
    background: list[asyncio.Task[None]] | None = None
    # Set only when the call's model failed and fallbacks were tried.
    fell_back: FellBack | None = None

    @property
    def user(self) -> str | None:
        """The end user the call is made for: the ``user_header_name`` header, else the body's
        ``user``, else ``litellm_metadata.user``, else ``metadata.user_id`` (LiteLLM's
        order) -- unless the caller's JWT names its end user, which the request cannot
        change: the identity provider vouched for it, and its budget must hold."""
        return self.principal.end_user_id or end_user_of(self.header_user, self.body,
                                                         self.metadata)

    def mark(self, name: str, verdict: str) -> None:
        if verdict in ("passed", "blocked") and name not in self.applied_guardrails:
            self.applied_guardrails.append(name)
        # A guardrail that runs in several modes keeps its worst verdict.
        if self.verdicts.get(name) not in ("blocked", "failed_closed"):
            self.verdicts[name] = verdict


# Where a request carries its call's context, set by app.py's middlewares (the request id,
# the client's address, the principal) and by the pipeline (the call, for the access log).
# Defined here, the lowest part that knows Principal and Call, so every part above reads the
# same typed keys.
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_IP: web.RequestKey[str | None] = web.RequestKey("client_ip")
PRINCIPAL = web.RequestKey("principal", Principal)
CALL = web.RequestKey("call", Call)


def end_user_of(header_user: str | None, body: dict[str, Any],
                metadata: dict[str, Any]) -> str | None:
    """The end user a call is made for, in LiteLLM's order (see :attr:`Call.user`)."""
    litellm_metadata = body.get("litellm_metadata")
    for user in (header_user, body.get("user"),
                 litellm_metadata.get("user") if isinstance(litellm_metadata, dict) else None,
                 metadata.get("user_id")):
        if isinstance(user, str) and user:
            return user
    return None


# Where a streamed text goes: (choice index, tool-call index), the tool-call index None for the
# choice's content (or completion text) and REFUSAL for its refusal.
TextKey = tuple[int, "int | str | None"]
# A refusal is its own text beside the content (a client tells the two apart), checked and
# held back like it.
REFUSAL = "refusal"


def _content_holder(choice: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta, "content"
    if "text" in choice:
        return choice, "text"
    return None


def stream_slots(choice: Any) -> Iterator[tuple[TextKey, Slot]]:
    """A chunk choice's text: its content, its refusal, then each tool call's arguments piece,
    each keyed by where it goes."""
    if not isinstance(choice, dict):
        return
    index = choice.get("index", 0)
    holder = _content_holder(choice)
    if holder is not None and isinstance(holder[0].get(holder[1]), str):
        yield (index, None), holder
    delta = choice.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("refusal"), str):
        yield (index, REFUSAL), (delta, "refusal")
    tool_calls = delta.get("tool_calls") if isinstance(delta, dict) else None
    for position, tool_call in enumerate(tool_calls if isinstance(tool_calls, list) else ()):
        function = tool_call.get("function") if isinstance(tool_call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            yield (index, tool_call.get("index", position)), (function, "arguments")

class Unsent(Mapping[TextKey, str]):
    """Each text of a stream that has been received and not yet sent to the client, keyed as
    ``StreamState.new_texts``: what the core holds back, the current chunk's text included (at
    the end), as the hooks before have left it.

    A ``post_call_stream`` hook may replace a text (``unsent[key] = text``): what the client
    is sent from then on is the new text. It may also keep more of a text back than the
    guardrails' ``stream_holdback`` (``hold``), for as long as a match may still grow. What it
    writes must be final for everything it does not hold: the core sends the rest.
    """

    __slots__ = ("_held", "_chunk", "_holds")

    def __init__(self, held: dict[TextKey, list[str]] | None = None) -> None:
        # Text out of earlier chunks (or out of this one, after a rewrite), as pieces joined
        # only when read, so that holding a long text costs each chunk only its own text.
        self._held: dict[TextKey, list[str]] = {} if held is None else held
        self._chunk: dict[str, Any] = {}
        self._holds: dict[TextKey, float] = {}

    def start(self, chunk: dict[str, Any]) -> None:
        """The core starts checking ``chunk`` (its texts not yet taken into the held text);
        the holds asked for the chunk before end."""
        self._chunk = chunk
        self._holds = {}

    @property
    def holding(self) -> bool:
        """Whether a hook asked to hold anything this chunk."""
        return bool(self._holds)

    def kept(self, key: TextKey) -> float:
        """The characters at the end of ``key``'s text that a hook asked to hold, this chunk."""
        return self._holds.get(key, 0)

    def hold(self, key: TextKey, chars: float = math.inf) -> None:
        """Keep at least the last ``chars`` characters of ``key``'s text from the client after
        this chunk (all of it by default), besides the guardrails' ``stream_holdback``. A hold
        lasts until the hooks are next handed new text of ``key`` (``new_texts``), when it
        must be asked again: nothing of a text is sent before then. Everything is sent once
        the stream ends (after the ``done`` call), held or not."""
        if chars > self._holds.get(key, 0):
            self._holds[key] = chars

    def _carried(self) -> dict[TextKey, Slot]:
        return {key: slot for choice in self._chunk.get("choices") or ()
                for key, slot in stream_slots(choice)}

    def _slot(self, key: TextKey) -> Slot | None:
        """Where the chunk carries ``key``'s text, if it does. Looked up on every use: a hook
        may have replaced the chunk's dicts since."""
        for choice in self._chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == key[0]:
                for found, slot in stream_slots(choice):
                    if found == key:
                        return slot
        return None

    def _head(self, key: TextKey) -> str:
        pieces = self._held.get(key)
        if not pieces:
            return ""
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        return pieces[0]

    def __getitem__(self, key: TextKey) -> str:
        slot = self._slot(key)
        if slot is None and not self._held.get(key):
            raise KeyError(key)
        return self._head(key) + (slot[0][slot[1]] if slot is not None else "")

    def __setitem__(self, key: TextKey, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"unsent text must be a str, not {type(text).__name__}")
        slot = self._slot(key)
        keep = len(text)
        if slot is not None:
            head = self._head(key)
            # The chunk goes on carrying everything from the first character changed, so that
            # a later hook that rewrites the chunk sees every unsent character it has not seen
            # as it now is; what is left unchanged before it stays held.
            keep = min(len(head), _common_prefix(head + slot[0][slot[1]], text))
            slot[0][slot[1]] = text[keep:]
        if keep:
            self._held[key] = [text[:keep]]
        else:
            self._held.pop(key, None)

    def __iter__(self) -> Iterator[TextKey]:
        carried = self._carried()
        yield from (key for key, pieces in self._held.items() if any(pieces) or key in carried)
        yield from (key for key in carried if not self._held.get(key))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def detached(self, chunk: dict[str, Any]) -> Unsent:
        """A copy working on ``chunk`` (a copy of the one being checked), for a run whose
        rewrites must not reach the client, or not before it is let to."""
        copy = Unsent({key: [self._head(key)] for key in self._held})
        copy._chunk = chunk
        return copy

    def adopt(self, other: Unsent) -> None:
        """Take what a detached copy's hook left: its held text and its holds."""
        self._held.clear()
        self._held.update(other._held)
        for key, chars in other._holds.items():
            self.hold(key, chars)

    def held_text(self) -> dict[TextKey, str]:
        """The held text by key (not the current chunk's): to tell whether a hook changed it."""
        return {key: self._head(key) for key in self._held}


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix, by halving: each step is one C comparison."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class StreamState:
    """What a ``post_call_stream`` hook knows about the stream so far.

    ``new_texts`` is the text each choice's content and each of its tool calls' arguments
    received in the current chunk alone (empty on the final ``done`` call): a check that keeps
    its own state between chunks (in ``scratch``) and reads only this does work linear in the
    reply. ``text_of``, ``texts``, ``arguments_of`` and ``all_texts`` give the whole text so
    far, the current chunk included, for a hook that needs all of it at once; each read joins
    every piece received, so reading them on every chunk costs time quadratic in the reply.
    All of these are the text as received from the upstream. ``unsent`` is the text not yet
    sent to the client, as the hooks have rewritten it, for a hook to rewrite (see
    :class:`Unsent`).
    """

    __slots__ = ("done", "scratch", "unsent", "_pieces", "_joined", "_new")

    def __init__(self, unsent: Unsent | None = None) -> None:
        # True on the final call, made with an empty chunk after the upstream finished.
        self.done = False
        # Free space for a guardrail's own per-stream state, keyed by guardrail name.
        self.scratch: dict[str, Any] = {}
        self.unsent = Unsent() if unsent is None else unsent
        self._pieces: dict[TextKey, list[str]] = {}
        self._joined: dict[TextKey, str] = {}
        self._new: dict[TextKey, str] = {}

    def next_chunk(self) -> None:
        """The core starts a chunk (or the final ``done`` call): ``new_texts`` empties."""
        self._new = {}

    def add(self, index: int, piece: str, tool: int | str | None = None) -> None:
        """A piece of choice ``index``'s content, of its tool call ``tool``'s arguments, or
        (``tool`` is ``REFUSAL``) of its refusal, in the current chunk."""
        key = (index, tool)
        self._pieces.setdefault(key, []).append(piece)
        self._joined.pop(key, None)
        if piece:
            self._new[key] = self._new.get(key, "") + piece

    @property
    def new_texts(self) -> dict[TextKey, str]:
        """The text the current chunk brought, by ``(choice index, tool-call index, None for
        content or "refusal")``: only the keys it brought text for; empty on the ``done``
        call."""
        return dict(self._new)

    def _text(self, key: TextKey) -> str:
        joined = self._joined.get(key)
        if joined is None:
            joined = self._joined[key] = "".join(self._pieces.get(key, ()))
        return joined

    def text_of(self, index: int) -> str:
        """Choice ``index``'s text received so far, the current chunk included."""
        return self._text((index, None))

    @property
    def text(self) -> str:
        """Choice 0's text received so far, the current chunk included."""
        return self.text_of(0)

    @property
    def texts(self) -> dict[int, str]:
        """Every choice's text so far, by choice index."""
        return {key[0]: self._text(key) for key in self._pieces if key[1] is None}

    def arguments_of(self, index: int) -> dict[int, str]:
        """Choice ``index``'s tool calls' arguments received so far, by tool-call index, as
        streamed: like content, they only grow. Once ``done``, ``decoded_arguments`` (from
        ``gatehouse.guardrails.text``) reads them as the model does."""
        return {key[1]: self._text(key) for key in self._pieces
                if key[0] == index and isinstance(key[1], int)}

    @property
    def all_texts(self) -> dict[TextKey, str]:
        """Everything streamed so far, content, refusals and arguments, by ``(choice index,
        tool-call index, None for content or "refusal")``: what a check that must see all of
        a stream at once reads."""
        return {key: self._text(key) for key in self._pieces}

    def detached(self, chunk: dict[str, Any]) -> StreamState:
        """This state with a detached copy of ``unsent`` on ``chunk`` (see
        :meth:`Unsent.detached`); what was received and ``scratch`` are shared."""
        copy = StreamState(self.unsent.detached(chunk))
        copy.done, copy.scratch = self.done, self.scratch
        copy._pieces, copy._joined, copy._new = self._pieces, self._joined, self._new
        return copy
