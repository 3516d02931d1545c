"""DRF authentication for the two key headers. A missing, unknown, revoked or wrong-kind
key is a 401 with `WWW-Authenticate`; a disabled account is a 403."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.services import key_authenticate
from zerotp.api import KeyRefused


class _KeyAuthentication(BaseAuthentication):
    header: str
    kind: str
    code: str  # the contract's error code for a key refused

    def authenticate(self, request: Request) -> tuple[User, ApiKey]:
        key = request.headers.get(self.header, "").strip()
        if not key:
            raise KeyRefused(self.code, f"The {self.header} header is missing.")
        record = key_authenticate(key=key, kind=self.kind)
        if record is None:
            raise KeyRefused(self.code, f"The {self.header} is unknown or revoked.")
        if not record.user.is_active:
            raise PermissionDenied("This account is disabled.")
        self.check(record.user)
        return record.user, record

    def check(self, user: User) -> None:
        pass

    def authenticate_header(self, request: Request) -> str:
        return f'{self.header} realm="api"'


class ApiKeyAuthentication(_KeyAuthentication):
    header = "X-API-KEY"
    kind = ApiKey.Kind.API
    code = "invalid_api_key"


class AgentKeyAuthentication(_KeyAuthentication):
    header = "X-AGENT-KEY"
    kind = ApiKey.Kind.AGENT
    code = "invalid_agent_key"

    def check(self, user: User) -> None:
        if not user.is_reseller:
            raise PermissionDenied("This account is no longer a reseller.")
