"""The staff console (issue 16): server-rendered pages through one layout.

``pages`` renders our own page templates (``templates/console/``) with Jinja2 and
autoescape; staff-written message templates keep the sandbox of
``services.campaigns.rendering``. ``routes`` serves the pages to signed-in staff.
"""
