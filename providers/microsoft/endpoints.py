"""Where Microsoft lives: the identity platform and Graph, or an emulator serving their paths."""

from __future__ import annotations

from dataclasses import dataclass

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com/v1.0"


@dataclass(frozen=True, slots=True)
class MicrosoftEndpoints:
    authorize_uri: str  # {authority}/oauth2/v2.0/authorize
    token_uri: str  # {authority}/oauth2/v2.0/token
    graph: str  # Graph's v1.0 root, no trailing slash

    @classmethod
    def microsoft(cls, tenant: str) -> MicrosoftEndpoints:
        return cls(
            authorize_uri=f"{LOGIN}/{tenant}/oauth2/v2.0/authorize",
            token_uri=f"{LOGIN}/{tenant}/oauth2/v2.0/token",
            graph=GRAPH,
        )

    @classmethod
    def emulator(cls, base: str, tenant: str) -> MicrosoftEndpoints:
        base = base.rstrip("/")
        return cls(
            authorize_uri=f"{base}/{tenant}/oauth2/v2.0/authorize",
            token_uri=f"{base}/{tenant}/oauth2/v2.0/token",
            graph=f"{base}/v1.0",
        )

    @classmethod
    def for_base(cls, base: str | None, tenant: str) -> MicrosoftEndpoints:
        return cls.emulator(base, tenant) if base else cls.microsoft(tenant)
