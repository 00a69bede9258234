"""What the web surface says in its own words; the core's states are worded by :mod:`bot.messages`."""

from __future__ import annotations

NAME_NEEDED = "Pick a name first (top left): it is how the playground knows which jobs are yours."
BAD_NAME = "A name is 1 to 32 letters, digits, spaces, dots, dashes or underscores."
BAD_CHANNEL = "A channel name is 1 to 32 letters, digits, dashes or underscores."
LINK_INVALID = (
    "This gallery link does not open this channel: it has expired or was changed. "
    "Ask for a fresh one with /gallery in the channel."
)
SERVER_ERROR = "Something went wrong on our side; the operator can see the log."
BAD_JSON = "The request was not understood (it needs a JSON body)."
BAD_ORIGIN = "Requests must come from this site's own pages."
BAD_INDEX = "Pick an image from 1 to 4."
NOTHING_TO_CANCEL = "You have nothing waiting or running."
EMPTY_PROMPT = "Type a prompt after /imagine, e.g. /imagine a lighthouse at dusk --ar 16:9"
NO_HISTORY = "Nothing has been made in this channel yet."
NO_STYLES = "There are no styles set up yet."
NOT_FOUND = "There is nothing here."


def unknown_command(name: str) -> str:
    return f"There is no command /{name[:32]}. Type /help to see the commands."


def bad_filter(name: str, expects: str) -> str:
    return f"The {name} filter takes {expects}."


def cancelled(job_id: str) -> str:
    return f"Cancelled job {job_id}."


def gallery_link(channel: str) -> str:
    return f"The gallery of #{channel}:"


def settings_saved(scope: str) -> str:
    return f"Saved your {scope} settings." if scope == "user" else f"Saved the {scope} settings."


COMMANDS = (
    ("/imagine PROMPT --flags", "make images (plain text works too)"),
    ("/gallery", "a link to this channel's gallery"),
    ("/history", "the latest prompts in this channel"),
    ("/queue", "your waiting and running jobs"),
    ("/cancel [JOB]", "cancel a job (your newest one when no id is given)"),
    ("/styles", "the style presets you can use with --style"),
    ("/settings [user|channel|server] [key=value ...]", "show or change saved defaults"),
    ("/audit", "the moderation log (server admins)"),
    ("/help", "this list"),
)
