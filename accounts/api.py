"""Buyer account endpoints (balance, "API & Callback" settings) and the base views of
both key kinds. Like every api.py, this is the roof: it may read from billing."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AgentKeyAuthentication, ApiKeyAuthentication
from accounts.models import User
from accounts.services import callback_settings_update
from billing.services import wallet_balance
from zerotp.api import StrictCharField, error_responses, validated


class KeyedRequest(Request):
    """A request to a KeyedView's handler: the key was checked before the handler runs, so
    DRF's `user` is the key's owner, never anonymous. Only the handlers' signatures say so;
    DRF builds the request as it always does."""

    user: User


class KeyedView(APIView):
    """An endpoint that needs a key. DRF checks the rate limit only after a key passed, so a
    request whose key is missing, wrong or refused is counted here, per client address (it
    has no key), and a key-guessing client meets a 429 like anyone else."""

    def perform_authentication(self, request: Request) -> None:
        try:
            super().perform_authentication(request)
        except exceptions.APIException:
            self.check_throttles(request)
            raise


class BuyerView(KeyedView):
    """Every buyer endpoint: `X-API-KEY` required."""

    authentication_classes = [ApiKeyAuthentication]


class AgentView(KeyedView):
    """Every modem-pool agent endpoint: `X-AGENT-KEY` of a reseller required."""

    authentication_classes = [AgentKeyAuthentication]


BalanceSerializer = inline_serializer(
    "Balance", {"balance": serializers.IntegerField(), "currency": serializers.CharField()}
)


class BalanceView(BuyerView):
    @extend_schema(
        operation_id="balance",
        summary="The account's balance in rupiah",
        responses={200: BalanceSerializer, **error_responses(401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        return Response({"balance": wallet_balance(request.user), "currency": settings.CURRENCY})


class AccountSerializer(serializers.Serializer):
    email = serializers.EmailField()
    balance = serializers.IntegerField()
    currency = serializers.CharField()
    is_reseller = serializers.BooleanField()
    callback_url = serializers.CharField(allow_null=True)
    callback_enabled = serializers.BooleanField()
    callback_secret = serializers.CharField(
        help_text="The Standard Webhooks signing secret (whsec_...) for verifying callbacks."
    )


class AccountPatchSerializer(serializers.Serializer):
    callback_url = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=2000,
        help_text="An http(s) URL on a public address; null or empty turns callbacks off.",
    )
    callback_enabled = serializers.BooleanField(required=False)
    rotate_callback_secret = serializers.BooleanField(
        required=False,
        help_text="true: issue a new secret; the old one keeps signing alongside for 24 hours.",
    )

    def to_internal_value(self, data: Any) -> Any:
        for name in ("callback_enabled", "rotate_callback_secret"):
            if name in data and not isinstance(data[name], bool):
                raise serializers.ValidationError({name: ["Must be true or false."]})
        return super().to_internal_value(data)


def account_data(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "balance": wallet_balance(user),
        "currency": settings.CURRENCY,
        "is_reseller": user.is_reseller,
        "callback_url": user.callback_url or None,
        "callback_enabled": user.callback_enabled,
        "callback_secret": user.callback_secret,
    }


class AccountView(BuyerView):
    @extend_schema(
        operation_id="account_read",
        summary="Account and callback settings",
        responses={200: AccountSerializer, **error_responses(401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        return Response(account_data(request.user))

    @extend_schema(
        operation_id="account_update",
        summary="Change the callback settings or rotate the signing secret",
        request=AccountPatchSerializer,
        responses={200: AccountSerializer, **error_responses(400, 401, 403, 413)},
    )
    def patch(self, request: KeyedRequest) -> Response:
        data = validated(AccountPatchSerializer, request.data)
        user = callback_settings_update(
            user=request.user,
            callback_url=data.get("callback_url"),
            set_url="callback_url" in data,
            callback_enabled=data.get("callback_enabled"),
            rotate_secret=data.get("rotate_callback_secret", False),
        )
        return Response(account_data(user))
