"""DRF authentication for the two key headers. A missing, unknown, revoked or wrong-kind
key is a 401 with `WWW-Authenticate`; a disabled account is a 403."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from accounts.models import ApiKey, User
from accounts.services import key_authenticate
from zerotp import errors


class _KeyAuthentication(BaseAuthentication):
    header: str
    kind: str
    error: type[errors.DomainError]

    def authenticate(self, request: Request) -> tuple[User, ApiKey]:
        key = request.headers.get(self.header, "").strip()
        if not key:
            raise self.error(f"The {self.header} header is missing.")
        record = key_authenticate(key=key, kind=self.kind)
        if record is None:
            raise self.error(f"The {self.header} is unknown or revoked.")
        if not record.user.is_active:
            raise errors.Forbidden("This account is disabled.")
        self.check(record.user)
        return record.user, record

    def check(self, user: User) -> None:
        pass

    def authenticate_header(self, request: Request) -> str:
        return f'{self.header} realm="api"'


class ApiKeyAuthentication(_KeyAuthentication):
    header = "X-API-KEY"
    kind = ApiKey.Kind.API
    error = errors.InvalidApiKey


class AgentKeyAuthentication(_KeyAuthentication):
    header = "X-AGENT-KEY"
    kind = ApiKey.Kind.AGENT
    error = errors.InvalidAgentKey

    def check(self, user: User) -> None:
        if not user.is_reseller:
            raise errors.Forbidden("This account is no longer a reseller.")
