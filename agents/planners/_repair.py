"""One repair attempt: show the model its invalid reply and every problem found."""

from __future__ import annotations

from agents.planners.types import ChatMessage

MAX_ECHO = 2000
MAX_PROBLEMS = 8


def repair_messages(
    messages: list[ChatMessage], reply: str, problems: list[str]
) -> list[ChatMessage]:
    """`messages` plus the bad reply and a request to answer again, correctly."""
    listed = "\n".join(f"- {problem}" for problem in problems[:MAX_PROBLEMS])
    request = (
        f"That reply is not a valid plan:\n{listed}\n"
        "Reply again with one JSON object that follows the schema, using only the listed "
        "names, or with an empty actions list."
    )
    return [
        *messages,
        {"role": "assistant", "content": reply[:MAX_ECHO]},
        {"role": "user", "content": request},
    ]
