"""Artefacts published by SendGrid, copied verbatim, for tests that must not rest on our
own fake alone. Each constant names the public source it was copied from.

* Signed Event Webhook golden vectors (public key, payload, signature, timestamp) that
  SendGrid's own libraries test their verifiers with. Two key pairs exist:
  - ``PY_JAVA_*``: sendgrid/sendgrid-python ``test/unit/test_eventwebhook.py`` and
    sendgrid/sendgrid-java ``src/test/java/com/sendgrid/helpers/eventwebhook/EventWebhookTest.java``
    (the same vector in both);
  - ``GO_NODE_*``: sendgrid/sendgrid-go ``helpers/eventwebhook/eventwebhook_test.go`` and
    sendgrid/sendgrid-nodejs ``packages/eventwebhook/src/eventwebhook.spec.js`` (the same
    vector; the Go test also publishes the pair's PRIVATE key, so fresh batches can be
    signed with it: :data:`GO_PRIVATE_KEY`).
* The per-event examples of SendGrid's Event Webhook Reference, one per event type (all
  11): sendgrid/docs ``content/docs/for-developers/tracking-events/event.md`` (the
  "Example webhook response" column), published at
  https://sendgrid.com/docs/for-developers/tracking-events/event/ (now
  https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event).
* The Inbound Parse samples shipped inside the ``sendgrid`` wheel
  (``sendgrid/helpers/inbound/sample_data/*.txt``), which SendGrid's ``send.py`` posts
  with ``Content-Type: multipart/form-data; boundary=xYzZY`` and the file's own bare LF
  line endings: :func:`inbound_sample`.
"""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

# --- golden signature vectors ------------------------------------------------------------

# sendgrid/sendgrid-python test/unit/test_eventwebhook.py (PUBLIC_KEY, SIGNATURE, TIMESTAMP,
# PAYLOAD = json.dumps([...], sort_keys=True, separators=(',', ':')) + '\r\n'), identical
# in sendgrid/sendgrid-java src/test/java/com/sendgrid/helpers/eventwebhook/EventWebhookTest.java.
PY_JAVA_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62"
    "gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
PY_JAVA_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15Tlu"
    "LtEZtM="
)
PY_JAVA_TIMESTAMP = "1600112502"
PY_JAVA_PAYLOAD = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]'
    b"\r\n"
)

# sendgrid/sendgrid-go helpers/eventwebhook/eventwebhook_test.go (timestamp, testPublicKey,
# testPrivateKey, signature; payload = json.Marshal of {"event", "category", "message_id"},
# keys sorted), identical in sendgrid/sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js.
GO_NODE_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7y"
    "AQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
GO_PRIVATE_KEY = (
    "MHcCAQEEIEQmZgBEh9DcU9zMl34czK3xov4AYvm9P3r7rNB2dNXtoAoGCCqGSM49AwEHoUQDQgAEEDr2LjtURuePQzpl"
    "ybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
GO_NODE_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH"
    "2j/0="
)
GO_NODE_TIMESTAMP = "1588788367"
GO_NODE_PAYLOAD = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'

# The negative cases all four libraries test with: another key ("bad key"), and a
# signature differing from GO_NODE_SIGNATURE in one character ("bad signature").
OTHER_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REnt"
    "lo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
BAD_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH"
    "3j/0="
)

# --- documented per-event examples ---------------------------------------------------------

_UA = "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"
_MSG = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
_COMMON = {
    "email": "example@test.com",
    "timestamp": 1513299569,
    "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
    "category": "cat facts",
}
# sendgrid/docs content/docs/for-developers/tracking-events/event.md, "Delivery events" and
# "Engagement events" tables, one example per event type, as published.
_DOCUMENTED: dict[str, dict[str, Any]] = {
    "processed": {
        "pool": {"name": "new_MY_test", "id": 210},
        "event": "processed",
        "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A==",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000",
    },
    "dropped": {
        "event": "dropped",
        "sg_event_id": "zmzJhfJgAfUSOW80yEbPyw==",
        "sg_message_id": _MSG,
        "reason": "Bounced Address",
        "status": "5.0.0",
    },
    "delivered": {
        "event": "delivered",
        "sg_event_id": "rWVYmVk90MjZJ9iohOBa3w==",
        "sg_message_id": _MSG,
        "response": "250 OK",
    },
    "deferred": {
        "event": "deferred",
        "sg_event_id": "t7LEShmowp86DTdUW8M-GQ==",
        "sg_message_id": _MSG,
        "response": "400 try again later",
        "attempt": "5",
    },
    "bounce": {
        "event": "bounce",
        "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
        "sg_message_id": _MSG,
        "reason": "500 unknown recipient",
        "status": "5.0.0",
        "type": "bounce",
    },
    "open": {
        "event": "open",
        "sg_event_id": "FOTFFO0ecsBE-zxFXfs6WA==",
        "sg_message_id": _MSG,
        "useragent": _UA,
        "ip": "255.255.255.255",
    },
    "click": {
        "event": "click",
        "sg_event_id": "kCAi1KttyQdEKHhdC-nuEA==",
        "sg_message_id": _MSG,
        "useragent": _UA,
        "ip": "255.255.255.255",
        "url": "http://www.sendgrid.com/",
    },
    "spamreport": {
        "event": "spamreport",
        "sg_event_id": "37nvH5QBz858KGVYCM4uOA==",
        "sg_message_id": _MSG,
    },
    "unsubscribe": {
        "event": "unsubscribe",
        "sg_event_id": "zz_BjPgU_5pS-J8vlfB1sg==",
        "sg_message_id": _MSG,
    },
    "group_unsubscribe": {
        "event": "group_unsubscribe",
        "sg_event_id": "ahSCB7xYcXFb-hEaawsPRw==",
        "sg_message_id": _MSG,
        "useragent": _UA,
        "ip": "255.255.255.255",
        "url": "http://www.sendgrid.com/",
        "asm_group_id": 10,
    },
    "group_resubscribe": {
        "event": "group_resubscribe",
        "sg_event_id": "w_u0vJhLT-OFfprar5N93g==",
        "sg_message_id": _MSG,
        "useragent": _UA,
        "ip": "255.255.255.255",
        "url": "http://www.sendgrid.com/",
        "asm_group_id": 10,
    },
}
#: The 11 event types of the Event Webhook Reference.
EVENT_TYPES = tuple(_DOCUMENTED)


def documented_event(kind: str) -> dict[str, Any]:
    """A fresh copy of the Reference's example of ``kind`` (one of EVENT_TYPES)."""
    return copy.deepcopy(_COMMON | _DOCUMENTED[kind])


def async_bounce() -> dict[str, Any]:
    """The Reference's bounce as an asynchronous bounce arrives: the current Reference's
    table of delivery-event properties marks ``sg_message_id`` "In the case of a delayed
    or asynchronous bounce, the message ID will be unavailable". A distinct event, so
    its own ``sg_event_id``."""
    event = documented_event("bounce") | {"sg_event_id": "async-6g4ZI7SA-xmRDv57GoPIPw=="}
    del event["sg_message_id"]
    return event


def machine_open() -> dict[str, Any]:
    """The Reference's open with ``sg_machine_open: true``, the field the current
    Reference documents for opens SendGrid attributes to a machine (Apple Mail Privacy
    Protection prefetching the images). A distinct event, so its own ``sg_event_id``."""
    machine = {"sg_machine_open": True, "sg_event_id": "machine-FOTFFO0ecsBE-zxFXfs6WA=="}
    return documented_event("open") | machine


# --- Inbound Parse samples -----------------------------------------------------------------

#: The files of ``sendgrid/helpers/inbound/sample_data`` with content (the wheel also
#: ships an empty ``default_data_with_attachments.txt``).
INBOUND_SAMPLES = ("default_data.txt", "raw_data.txt", "raw_data_with_attachments.txt")
#: What ``sendgrid/helpers/inbound/send.py`` sends them with.
INBOUND_CONTENT_TYPE = "multipart/form-data; boundary=xYzZY"
#: The recipient addresses the samples were sent to.
INBOUND_SAMPLE_TO = (b"inbound@inbound.example.com", b"inbound@inbound.inbound.com")


def inbound_sample(name: str) -> bytes:
    """A sample file of the installed ``sendgrid`` wheel, as its bytes (bare LF)."""
    data = resources.files("sendgrid.helpers.inbound").joinpath("sample_data", name)
    return data.read_bytes()
