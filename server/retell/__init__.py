"""Retell AI custom functions: `POST /retell/functions/{toolName}`."""
