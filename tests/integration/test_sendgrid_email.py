"""The SendGrid sender against a fake SendGrid HTTP server, through the real library.

The fake's rules for ``tracking_settings`` and ``asm`` are SendGrid's published ones:
tests/fakes/sendgrid_settings.py names the documents they come from."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from services.campaigns.channels.email import (
    OutgoingEmail,
    RateLimited,
    SendGridEmailSender,
    TransientSendError,
    list_unsubscribe_headers,
    verify_event_webhook,
)
from services.campaigns.rendering import TemplateRenderer, sample_context
from tests.fakes.sendgrid_server import FakeSendGrid, WebhookSigner
from tests.fakes.sendgrid_settings import EVERY_TRACKING, SENDGRID_LINKS

KEY = "SG.integration-key"
BASE = "https://winwin.example.org"
SUBJECT = "News for {{ contact.first_name }}"
HTML = (
    "<p>Hello {{ contact.name }},</p>"
    '{% for r in resources %}<p><a href="{{ r.url }}">{{ r.title }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
TEXT = (
    "Hello {{ contact.name }},\n"
    "{% for r in resources %}{{ r.title }}: {{ r.url }}\n{% endfor %}"
    "Unsubscribe: {{ unsubscribe_url }}\n"
)


def make_emails(n: int, renderer: TemplateRenderer | None = None) -> list[OutgoingEmail]:
    """Render ``n`` recipients the way the dispatcher does, with per-recipient links."""
    renderer = renderer or TemplateRenderer()
    emails = []
    for i in range(n):
        links = [f"{BASE}/r/tok{i:05d}a{j}" for j in range(2)]
        unsub = f"{BASE}/u/uns{i:05d}"
        name = f"Person {i:05d}"
        context = sample_context()
        context["contact"].update(name=name, first_name=f"P{i}")
        context["unsubscribe_url"] = unsub
        context["resources"] = [
            {"id": f"res-{j}", "title": f"Guide {j}", "kind": "guide", "url": links[j]}
            for j in range(2)
        ]
        out = renderer.render(SUBJECT, HTML, TEXT, context)
        emails.append(
            OutgoingEmail(
                send_id=f"send-{i}",
                to_email=f"person{i}@example.net",
                to_name=name,
                subject=out.subject or "",
                html=out.html,
                text=out.text,
                headers=list_unsubscribe_headers(unsub),
                custom_args={
                    "ww_campaign": "cmp-1",
                    "ww_person": f"p{i:05d}",
                    "ww_send": f"send-{i}",
                },
                substitutions={
                    "-ww_unsub-": unsub,
                    "-ww_link_0-": links[0],
                    "-ww_link_1-": links[1],
                    "-ww_name-": name,
                },
            )
        )
    return emails


def assert_exact(delivered, emails) -> None:
    by_to = {d.to: d for d in delivered}
    assert len(by_to) == len(delivered) == len(emails)
    for e in emails:
        d = by_to[e.to_email]
        assert (d.subject, d.html, d.text) == (e.subject, e.html, e.text)
        assert d.to_name == e.to_name
        assert d.headers == dict(e.headers)
        assert d.custom_args == dict(e.custom_args)


@pytest.fixture
def fake():
    with FakeSendGrid(api_key=KEY) as server:
        yield server


def test_2500_emails_go_in_3_requests_each_exact(fake: FakeSendGrid) -> None:
    emails = make_emails(2500)
    sender = SendGridEmailSender(KEY, "outreach@example.org", fake.host)
    results = sender.send(emails)
    assert fake.request_count == 3
    assert [r.send_id for r in results] == [e.send_id for e in emails]
    assert all(r.status == "sent" and r.message_id for r in results)
    assert len({r.message_id for r in results}) == 3
    assert_exact(fake.delivered, emails)
    delivered = {d.to: d for d in fake.delivered}
    for e, r in zip(emails, results, strict=True):
        assert delivered[e.to_email].message_id == r.message_id
        assert (
            delivered[e.to_email].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        )
    # the shared content really is a skeleton, not one recipient's body
    body = fake.accepted_bodies[0]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "-ww_link_0-" in body["content"][1]["value"]
    assert "@" not in json.dumps([p["custom_args"] for p in body["personalizations"]])


def test_email_that_cannot_be_skeletonised_goes_alone_and_exact(fake: FakeSendGrid) -> None:
    emails = make_emails(5)
    # the body already contains a tag literally: substitution would corrupt it
    emails[2] = replace(emails[2], text=emails[2].text + "Literal -ww_name- stays.\n")
    # a second copy of recipient 0's body to another address groups with the rest
    emails.append(replace(make_emails(1)[0], send_id="send-q", to_email="q@example.net"))
    results = SendGridEmailSender(KEY, "outreach@example.org", fake.host).send(emails)
    assert all(r.status == "sent" for r in results)
    assert fake.request_count == 2
    assert_exact(fake.delivered, emails)
    alone = [b for b in fake.accepted_bodies if len(b["personalizations"]) == 1]
    assert len(alone) == 1 and "substitutions" not in alone[0]["personalizations"][0]


def test_names_with_html_special_characters_still_group(fake: FakeSendGrid) -> None:
    renderer = TemplateRenderer()
    emails = []
    for i, name in enumerate(["Ann O'Brien", "Bo <b>Bold</b>", "Cy & Co", 'Di "Quote"']):
        context = sample_context()
        context["contact"]["name"] = name
        out = renderer.render(None, "<p>{{ contact.name }}</p>", "{{ contact.name }}", context)
        emails.append(
            OutgoingEmail(
                f"s{i}",
                f"n{i}@example.net",
                None,
                "Hi",
                out.html,
                out.text,
                substitutions={"-ww_name-": name},
            )
        )
    SendGridEmailSender(KEY, "outreach@example.org", fake.host).send(emails)
    assert fake.request_count == 1
    assert_exact(fake.delivered, emails)


def test_duplicate_addresses_are_split_across_requests(fake: FakeSendGrid) -> None:
    emails = make_emails(3)
    twin = replace(emails[0], send_id="twin")
    results = SendGridEmailSender(KEY, "outreach@example.org", fake.host).send([*emails, twin])
    assert [r.status for r in results] == ["sent"] * 4
    assert fake.request_count == 2


def test_rate_limit_raises_with_retry_after_and_records_nothing(fake: FakeSendGrid) -> None:
    fake.rate_limit(0, 30)
    sender = SendGridEmailSender(KEY, "outreach@example.org", fake.host)
    with pytest.raises(RateLimited) as info:
        sender.send(make_emails(3))
    assert 0 < info.value.retry_after_seconds <= 31
    assert info.value.results == []
    assert fake.delivered == []


def test_rate_limit_mid_batch_reports_what_was_sent(fake: FakeSendGrid) -> None:
    fake.rate_limit(1, 30)
    emails = make_emails(1500)
    with pytest.raises(RateLimited) as info:
        SendGridEmailSender(KEY, "outreach@example.org", fake.host).send(emails)
    assert len(info.value.results) == 1000 == len(fake.delivered)
    assert {r.send_id for r in info.value.results} == {e.send_id for e in emails[:1000]}


def test_server_error_is_transient(fake: FakeSendGrid) -> None:
    fake.fail_next(1, status=500)
    sender = SendGridEmailSender(KEY, "outreach@example.org", fake.host)
    with pytest.raises(TransientSendError):
        sender.send(make_emails(2))
    assert fake.delivered == []
    assert [r.status for r in sender.send(make_emails(2))] == ["sent", "sent"]


def test_unreachable_server_is_transient() -> None:
    with FakeSendGrid(api_key=KEY) as server:
        host = server.host
    with pytest.raises(TransientSendError):
        SendGridEmailSender(KEY, "outreach@example.org", host, timeout=2).send(make_emails(1))


def test_bad_key_fails_every_email_with_the_reason(fake: FakeSendGrid) -> None:
    results = SendGridEmailSender("SG.wrong", "outreach@example.org", fake.host).send(
        make_emails(3)
    )
    assert [r.status for r in results] == ["failed"] * 3
    assert all("401" in (r.error or "") and "authorization" in (r.error or "") for r in results)
    assert fake.delivered == []


def test_one_bad_recipient_does_not_sink_the_request(fake: FakeSendGrid) -> None:
    emails = make_emails(8)
    emails[5] = replace(emails[5], to_email="not-an-address")
    results = SendGridEmailSender(KEY, "outreach@example.org", fake.host).send(emails)
    assert [r.status for r in results] == ["sent"] * 5 + ["failed"] + ["sent"] * 2
    assert "email address" in (results[5].error or "")
    assert len(fake.delivered) == 7


def test_webhook_signature_round_trip() -> None:
    signer = WebhookSigner()
    body = b'[{"event":"open","sg_event_id":"e1","ww_send":"send-1"}]'
    headers = signer.sign(body, "1700000000")
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert verify_event_webhook(signer.public_key_b64, body, signature, timestamp)
    assert not verify_event_webhook(
        signer.public_key_b64, body.replace(b"open", b"click"), signature, timestamp
    )
    assert not verify_event_webhook(signer.public_key_b64, body, signature, "1700000001")
    assert not verify_event_webhook(signer.public_key_b64, body, "not base64!", timestamp)
    assert not verify_event_webhook(signer.public_key_b64, body, None, timestamp)
    assert not verify_event_webhook(WebhookSigner().public_key_b64, body, signature, timestamp)
    fresh = signer.sign(body)
    ok = verify_event_webhook(
        signer.public_key_b64,
        body,
        fresh["X-Twilio-Email-Event-Webhook-Signature"],
        fresh["X-Twilio-Email-Event-Webhook-Timestamp"],
        max_age_seconds=300,
    )
    assert ok
    assert not verify_event_webhook(
        signer.public_key_b64, body, signature, timestamp, max_age_seconds=300, now=time.time()
    )


# --- one tracking layer (issue 14, item 4) ---------------------------------------------

#: What every Mail Send must carry: SendGrid's click, open and subscription tracking off.
TRACKING_OFF = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
    "subscription_tracking": {"enable": False},
}


def test_on_an_account_with_all_sendgrid_tracking_on_recipients_get_only_ours() -> None:
    """The account's own tracking would rewrite our /r/ links (html and text), add a
    second pixel and its unsubscribe footer: the requests turn it off."""
    with FakeSendGrid(api_key=KEY, account_tracking=EVERY_TRACKING) as fake:
        emails = make_emails(4)
        results = SendGridEmailSender(KEY, "outreach@example.org", fake.host).send(emails)
        assert [r.status for r in results] == ["sent"] * 4
        assert [b["tracking_settings"] for b in fake.accepted_bodies] == [TRACKING_OFF]
        assert "asm" not in fake.accepted_bodies[0]
        assert_exact(fake.delivered, emails)  # no SendGrid redirect, pixel or footer
        assert not any(SENDGRID_LINKS in (d.html or "") + d.text for d in fake.delivered)


def test_the_fake_applies_an_accounts_tracking_to_a_send_that_does_not_say() -> None:
    """What the test above guards against, through the real library's client."""
    from sendgrid import SendGridAPIClient

    with FakeSendGrid(api_key=KEY, account_tracking=EVERY_TRACKING) as fake:
        email = make_emails(1)[0]
        body = {
            "from": {"email": "outreach@example.org"},
            "personalizations": [{"to": [{"email": email.to_email}], "subject": email.subject}],
            "content": [
                {"type": "text/plain", "value": email.text},
                {"type": "text/html", "value": email.html},
            ],
        }
        assert SendGridAPIClient(api_key=KEY, host=fake.host).send(body).status_code == 202
        (got,) = fake.delivered
        assert f"{BASE}/r/" not in got.html and f"{BASE}/r/" not in got.text
        assert got.html.count(f"{SENDGRID_LINKS}/ls/click") == 3  # 2 resources, our unsubscribe
        assert f"{SENDGRID_LINKS}/wf/open" in got.html
        assert got.headers["List-Unsubscribe"].startswith(f"<{SENDGRID_LINKS}/asm/unsubscribe")


@pytest.mark.parametrize(
    ("part", "field", "message"),
    [
        ({"asm": {"group_id": "7"}}, "asm.group_id", "The ASM group ID must be an integer."),
        ({"asm": {"groups_to_display": [7]}}, "asm.group_id", "must be an integer"),
        ({"asm": {"group_id": 7, "groups_to_display": list(range(1, 27))}},
         "asm.groups_to_display", "There is a limit of 25 unsubscribe groups"),
        ({"asm": {"group_id": 7, "groups_to_display": ["7"]}},
         "asm.groups_to_display", "must be an array of integers"),
        ({"tracking_settings": {"click_tracking": {"enable": "false"}}},
         "tracking_settings.click_tracking.enable", "should be a boolean value"),
        ({"tracking_settings": {"click_tracking": {"enable": False, "enable_text": 0}}},
         "tracking_settings.click_tracking.enable_text", "must be a boolean value"),
        ({"tracking_settings": {"open_tracking": {"enable": False, "substitution_tag": 1}}},
         "tracking_settings.open_tracking.substitution_tag", "must be a string"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_sendgrid_refuses(part: dict, field: str, message: str) -> None:
    """SendGrid's published messages (tests/fakes/sendgrid_settings.py says where from)."""
    from python_http_client.exceptions import BadRequestsError
    from sendgrid import SendGridAPIClient

    with FakeSendGrid(api_key=KEY) as fake:
        body = {
            "from": {"email": "outreach@example.org"},
            "personalizations": [{"to": [{"email": "a@example.net"}], "subject": "Hi"}],
            "content": [{"type": "text/plain", "value": "Hi"}],
        } | part
        with pytest.raises(BadRequestsError) as info:
            SendGridAPIClient(api_key=KEY, host=fake.host).send(body)
        (error,) = json.loads(info.value.body)["errors"]
        assert error["field"] == field and message in error["message"]
        assert fake.delivered == []


def test_a_campaigns_unsubscribe_group_goes_as_asm_group_id() -> None:
    with FakeSendGrid(api_key=KEY) as fake:
        fake.asm_groups = {42}
        emails = make_emails(4)
        emails[:2] = [replace(e, asm_group_id=42) for e in emails[:2]]
        SendGridEmailSender(KEY, "outreach@example.org", fake.host).send(emails)
        bodies = sorted(fake.accepted_bodies, key=lambda b: "asm" in b)
        assert [b.get("asm") for b in bodies] == [None, {"group_id": 42}]
        assert [len(b["personalizations"]) for b in bodies] == [2, 2]  # one request per group
        groups = {d.to: d.asm_group_id for d in fake.delivered}
        assert groups == {e.to_email: e.asm_group_id for e in emails}
        assert_exact(fake.delivered, emails)
