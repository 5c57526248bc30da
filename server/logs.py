"""Logging configuration.

Some libraries log credentials at DEBUG: requests-oauthlib prints authorization codes and token
responses, oauthlib request bodies, urllib3/httplib2 full URLs. They are held at WARNING
whatever LOG_LEVEL says, so turning on debugging never writes a token to a log.
"""

from __future__ import annotations

import logging

CREDENTIAL_LEAKING_LOGGERS = (
    "requests_oauthlib",
    "oauthlib",
    "urllib3",
    "httplib2",
    "google_auth_httplib2",
    "google.auth",
    "google.oauth2",
    "googleapiclient",
    "httpx",
    "httpcore",
)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for name in CREDENTIAL_LEAKING_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
