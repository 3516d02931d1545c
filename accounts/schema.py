"""OpenAPI security schemes for the two key headers (drf-spectacular)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-KEY",
            "description": "A buyer API key (ztp_live_...).",
        }


class AgentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AgentKeyAuthentication"
    name = "AgentKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-AGENT-KEY",
            "description": "A reseller's modem-pool agent key (ztp_agent_...).",
        }
