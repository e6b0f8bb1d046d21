"""SendGrid's tracking_settings/asm rules of the fake: services/devtools/sendgrid_rules.py."""

from services.devtools.sendgrid_rules import EVERY_TRACKING, SENDGRID_LINKS, AccountTracking

__all__ = ["EVERY_TRACKING", "SENDGRID_LINKS", "AccountTracking"]
