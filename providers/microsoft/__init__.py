"""Microsoft 365 / Outlook: the identity platform (consent, refresh) and Microsoft Graph calendars.

Everything that knows Microsoft lives here: endpoints, one aiohttp connection pool on the event
loop (`http.py`), retries within the call's budget (`retry.py`), Windows time-zone names
(`zones.py`), and the one module that translates Graph's and the token endpoint's errors into
the domain's caller-facing errors (`errors.py`). It mirrors `providers/google`; the tools do not
know which of the two they talk to.
"""
