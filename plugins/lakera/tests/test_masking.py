"""Where masked spans land when a message's text comes from several places."""

from __future__ import annotations

from gatehouse_lakera.turns import conversation, reply_turn


def test_overlapping_spans_are_masked_once():
    body = {"messages": [{"role": "user", "content": "I am Bob Smith, bob.smith@x.io"}]}
    (turn,) = conversation(body)
    text = turn.text
    email = text.index("bob.smith@x.io")
    # A name detector matching inside the email as well as before it.
    turn.mask([(text.index("Bob Smith"), text.index("Bob Smith") + 9, "[MASKED NAME]"),
               (email, email + 14, "[MASKED EMAIL]"),
               (email, email + 9, "[MASKED NAME]")])
    assert body["messages"][0]["content"] == "I am [MASKED NAME], [MASKED EMAIL]"


def test_a_span_across_two_parts_is_labelled_once_and_removed_from_both():
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "call 412-612"},
                                                       {"type": "text", "text": "9992 now"}]}]}
    (turn,) = conversation(body)
    assert turn.text == "call 412-612\n9992 now"
    turn.mask([(5, 17, "[MASKED PHONE]")])
    assert [p["text"] for p in body["messages"][0]["content"]] == ["call [MASKED PHONE]", " now"]


def test_completion_prompts_and_empty_messages():
    body = {"prompt": ["first", "", "mail a@b.co"]}
    turns = conversation(body)
    # The empty prompt is not sent, so it takes no message_id.
    assert [t.as_message() for t in turns] == [{"role": "user", "content": "first"},
                                               {"role": "user", "content": "mail a@b.co"}]
    turns[1].mask([(5, 11, "[MASKED EMAIL]")])
    assert body["prompt"] == ["first", "", "mail [MASKED EMAIL]"]


def test_the_reply_turn_covers_tool_call_arguments():
    response = {"choices": [{"index": 0, "message": {
        "role": "assistant", "content": "done",
        "tool_calls": [{"type": "function",
                        "function": {"name": "send", "arguments": '{"to": "a@b.co"}'}}]}}]}
    turn = reply_turn(response)
    assert turn.as_message() == {"role": "assistant", "content": 'done\n{"to": "a@b.co"}'}
    start = turn.text.index("a@b.co")
    turn.mask([(start, start + 6, "[MASKED EMAIL]")])
    arguments = response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert arguments == '{"to": "[MASKED EMAIL]"}'
