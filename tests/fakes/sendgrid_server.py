"""The fake SendGrid of the tests: it lives in the product, in services/devtools/fake_sendgrid.py,
because ``winwin bench dispatch`` uses it too (the product does not import its tests)."""

from services.devtools.fake_sendgrid import DeliveredEmail, FakeSendGrid, WebhookSigner

__all__ = ["DeliveredEmail", "FakeSendGrid", "WebhookSigner"]
