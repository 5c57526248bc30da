"""Connections: how an end user's calendar grant is obtained, kept fresh, and given up.

Connect links, the consent flow (state + PKCE), sealed grants with single-flight refresh, and
disconnection. Provider-neutral: the provider's endpoints arrive through `ports.oauth.OAuthClient`
and its calendar through `ports.calendar.CalendarClient`.
"""
