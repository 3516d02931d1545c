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
        key = self.key_of(request).strip()
        if not key:
            raise KeyRefused(self.code, f"The {self.header} is missing.")
        record = key_authenticate(key=key, kind=self.kind)
        if record is None:
            raise KeyRefused(self.code, f"The {self.header} is unknown or revoked.")
        if not record.user.is_active:
            raise PermissionDenied("This account is disabled.")
        self.check(record.user)
        return record.user, record

    def key_of(self, request: Request) -> str:
        return request.headers.get(self.header, "")

    def check(self, user: User) -> None:
        pass

    def authenticate_header(self, request: Request) -> str:
        return f'{self.header} realm="api"'


class ApiKeyAuthentication(_KeyAuthentication):
    header = "X-API-KEY"
    kind = ApiKey.Kind.API
    code = "invalid_api_key"


class ApiKeyParameterAuthentication(ApiKeyAuthentication):
    """The same API key, as the sms-activate protocol sends it: the `api_key` parameter,
    in the query string or a form body."""

    header = "api_key"

    def key_of(self, request: Request) -> str:
        return parameter(request, self.header)


def parameter(request: Request, name: str) -> str:
    """A parameter from the query string, else from a form body ("" if in neither)."""
    value = request.query_params.get(name)
    if value is None:
        value = request.POST.get(name)
    return value if isinstance(value, str) else ""


class AgentKeyAuthentication(_KeyAuthentication):
    header = "X-AGENT-KEY"
    kind = ApiKey.Kind.AGENT
    code = "invalid_agent_key"

    def check(self, user: User) -> None:
        if not user.is_reseller:
            raise PermissionDenied("This account is no longer a reseller.")
