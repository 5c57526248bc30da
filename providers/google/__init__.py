"""Google: OAuth (consent, refresh, revocation) and Calendar v3, through Google's own libraries.

Everything that knows Google lives here: endpoints, the worker threads the synchronous client
runs on, retries within the call's budget, and the one module that translates Google's
exceptions into the domain's caller-facing errors (`errors.py`).
"""
