"""SendGrid's rules for a Mail Send's ``tracking_settings`` and ``asm``, for the fake server.

Where the rules come from (SendGrid's own published material):

* the v3 Mail Send OpenAPI schema (``twilio/sendgrid-oai``, ``spec/json/tsg_mail_v3.json``):
  ``asm.group_id`` is a required integer, ``asm.groups_to_display`` an array of at most
  25 integers; ``tracking_settings`` holds ``click_tracking`` (``enable``,
  ``enable_text``), ``open_tracking`` (``enable``, ``substitution_tag``),
  ``subscription_tracking`` (``enable``, ``text``, ``html``, ``substitution_tag``) and
  ``ganalytics`` (``enable``, ``utm_*``);
* the Mail Send errors page (``sendgrid/docs``,
  ``source/API_Reference/Web_API_v3/Mail/errors.md``): the messages and fields below;
* the Tracking Settings guide: what each tracking does to a message when on. A send's
  ``tracking_settings`` override the account's settings (Settings > Tracking), and the
  account's apply to every send that does not say: click tracking rewrites every link
  to a SendGrid redirect (the text part too with ``enable_text``), open tracking adds
  SendGrid's own pixel at the end of the html, subscription tracking appends an
  unsubscribe footer and sets the List-Unsubscribe headers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

SENDGRID_LINKS = "https://u0000000.ct.sendgrid.net"
MAX_GROUPS_TO_DISPLAY = 25
_HREF = re.compile(r'href="(https?://[^"]+)"')
_URL = re.compile(r"https?://[^\s<>\"']+")


class SettingError(Exception):
    """A 400 of Mail Send: ``message`` and the ``field`` SendGrid names."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class AccountTracking:
    """The account's tracking settings: what applies when a send's own do not say."""

    click: bool = False
    click_text: bool = False
    open: bool = False
    subscription: bool = False


#: An account with every tracking switched on (the situation of issue 14).
EVERY_TRACKING = AccountTracking(click=True, click_text=True, open=True, subscription=True)

# (setting, property) -> (expected type, SendGrid's message)
_TRACKING_RULES: dict[tuple[str, str], tuple[type, str]] = {
    ("click_tracking", "enable"): (bool, "The click tracking enable param should be a boolean value."),
    ("click_tracking", "enable_text"): (bool, "The click tracking enable text must be a boolean value."),
    ("open_tracking", "enable"): (bool, "The open tracking enable param should be a boolean value."),
    ("open_tracking", "substitution_tag"): (str, "The open tracking substitution tag must be a string."),
    ("subscription_tracking", "enable"): (bool, "The subscription tracking enable param should be a boolean value."),
    ("subscription_tracking", "text"): (str, "The subscription tracking unsubscribe content for text/plain messages must be a string."),
    ("subscription_tracking", "html"): (str, "The subscription tracking unsubscribe content for text/html messages must be a string."),
    ("subscription_tracking", "substitution_tag"): (str, "The subscription tracking substitution tag must be a string value."),
    ("ganalytics", "enable"): (bool, "The Google Analytics enable param must be a boolean value."),
    **{("ganalytics", f"utm_{k}"): (str, f"The Google Analytics utm_{k} must be a string value.")
       for k in ("source", "medium", "term", "content", "campaign")},
}  # fmt: skip


def check_tracking_settings(body: dict[str, Any]) -> None:
    """Refuse ``tracking_settings`` the way SendGrid does (type of every property)."""
    settings = body.get("tracking_settings")
    if settings is None:
        return
    if not isinstance(settings, dict):
        raise SettingError("Invalid type. Expected: object.", "tracking_settings")
    for name, setting in settings.items():
        where = f"tracking_settings.{name}"
        if not isinstance(setting, dict):
            raise SettingError("Invalid type. Expected: object.", where)
        for prop, value in setting.items():
            rule = _TRACKING_RULES.get((name, prop))
            if rule is not None and not isinstance(value, rule[0]):
                raise SettingError(rule[1], f"{where}.{prop}")


def check_asm(body: dict[str, Any], groups: set[int] | None) -> int | None:
    """Refuse a bad ``asm``; its group id (None without ``asm``). ``groups``: the
    account's unsubscribe groups (None: any id is one)."""
    asm = body.get("asm")
    if asm is None:
        return None
    if not isinstance(asm, dict):
        raise SettingError("Invalid type. Expected: object.", "asm")
    group = asm.get("group_id")
    if not isinstance(group, int) or isinstance(group, bool):
        raise SettingError("The ASM group ID must be an integer.", "asm.group_id")
    if groups is not None and group not in groups:
        raise SettingError(
            f"The ASM group ID must be a valid Group ID on your account. You provided {group}.",
            "asm.group_id",
        )
    shown = asm.get("groups_to_display")
    if shown is not None:
        where = "asm.groups_to_display"
        if not isinstance(shown, list) or not all(_is_int(g) for g in shown):
            raise SettingError("The ASM Group IDs to display must be an array of integers.", where)
        if len(shown) > MAX_GROUPS_TO_DISPLAY:
            raise SettingError(
                "There is a limit of 25 unsubscribe groups that can be displayed to a user at a time.",
                where,
            )
    return int(group)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def effective(body: dict[str, Any], account: AccountTracking) -> AccountTracking:
    """The tracking that applies to this send: its own settings, else the account's."""
    settings = body.get("tracking_settings") or {}

    def on(name: str, prop: str, default: bool) -> bool:
        value = (settings.get(name) or {}).get(prop)
        return default if value is None else bool(value)

    click = on("click_tracking", "enable", account.click)
    return AccountTracking(
        click=click,
        click_text=click and on("click_tracking", "enable_text", account.click_text),
        open=on("open_tracking", "enable", account.open),
        subscription=on("subscription_tracking", "enable", account.subscription),
    )


def apply_tracking(
    message: dict[str, Any], tracking: AccountTracking, recipient: str
) -> dict[str, Any]:
    """What SendGrid's tracking does to one rendered message (html, text, headers)."""
    html, text, headers = message["html"], message["text"], dict(message["headers"])
    token = hashlib.sha256(recipient.encode()).hexdigest()[:16]
    if tracking.click and html:
        html = _HREF.sub(lambda m: f'href="{_redirect(m.group(1), token)}"', html)
    if tracking.click_text and text:
        text = _URL.sub(lambda m: _redirect(m.group(0), token), text)
    if tracking.open and html:
        pixel = f'<img src="{SENDGRID_LINKS}/wf/open?upn={token}" alt="" width="1" height="1">'
        at = html.lower().rfind("</body>")
        html = html + pixel if at < 0 else html[:at] + pixel + html[at:]
    if tracking.subscription:
        unsubscribe = f"{SENDGRID_LINKS}/asm/unsubscribe/?user_id={token}"
        html = html and f'{html}<p><a href="{unsubscribe}">Unsubscribe</a></p>'
        text = text and f"{text}\nUnsubscribe: {unsubscribe}\n"
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message | {"html": html, "text": text, "headers": headers}


def _redirect(url: str, token: str) -> str:
    link = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{SENDGRID_LINKS}/ls/click?upn={token}.{link}"
