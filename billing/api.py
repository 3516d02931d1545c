"""Money in and out over the API: top-ups (`/api/v1/topups`), resellers' withdrawals
(`/api/v1/withdrawals`), and Midtrans's payment notification. The views parse and render;
billing/topups.py and billing/withdrawals.py decide."""

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import BuyerView, KeyedRequest
from billing.models import TopUp, Withdrawal
from billing.topups import midtrans_notified, topup_create
from billing.withdrawals import withdrawal_request
from zerotp import errors
from zerotp.api import CursorPage, error_responses, json_object
from zerotp.errors import error_body
from zerotp.times import iso


class TopUpSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    amount = serializers.IntegerField(help_text="The amount asked for, in rupiah.")
    payable = serializers.IntegerField(
        help_text="What to pay, exactly: for a bank transfer the amount plus a unique suffix."
    )
    status = serializers.ChoiceField(choices=TopUp.Status.values)
    redirect_url = serializers.CharField(
        allow_null=True, help_text="The provider's payment page (Midtrans), to send the buyer to."
    )
    bank_accounts = serializers.ListField(
        child=serializers.CharField(), help_text="Where to transfer (bank transfer only)."
    )
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


def topup_data(topup: TopUp) -> dict[str, Any]:
    return {
        "id": topup.pk,
        "provider": topup.provider,
        "amount": topup.amount,
        "payable": topup.payable,
        "status": topup.status,
        "redirect_url": topup.redirect_url or None,
        "bank_accounts": settings.MANUAL_BANK_ACCOUNTS if topup.provider == "manual" else [],
        "created_at": iso(topup.created_at),
        "expires_at": iso(topup.expires_at),
        "closed_at": iso(topup.closed_at),
    }


class TopUpCreateSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    provider = serializers.CharField()


class TopUpsView(BuyerView):
    pagination_class = CursorPage

    @extend_schema(
        operation_id="topup_create",
        summary="Start a top-up (pay through the provider, then the balance is credited)",
        request=TopUpCreateSerializer,
        responses={201: TopUpSerializer, **error_responses(400, 401, 403, 413, 502)},
    )
    def post(self, request: KeyedRequest) -> Response:
        body = json_object(request.data)
        topup = topup_create(
            user=request.user, amount=body.get("amount"), provider=body.get("provider")
        )
        return Response(topup_data(topup), status=201)

    @extend_schema(
        operation_id="topups_list",
        summary="The account's top-ups, newest first",
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("limit", int)],
        responses={200: TopUpSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        return CursorPage.answer(TopUp.objects.filter(user=request.user), request, self, topup_data)


class TopUpView(BuyerView):
    @extend_schema(
        operation_id="topup_read",
        summary="One top-up and its status",
        responses={200: TopUpSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: KeyedRequest, topup_id: int) -> Response:
        topup = TopUp.objects.filter(pk=topup_id, user=request.user).first()
        if topup is None:
            raise errors.NotFound(f"There is no top-up {topup_id}.")
        return Response(topup_data(topup))


class WithdrawalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField()
    method = serializers.ChoiceField(choices=Withdrawal.Method.values)
    account_name = serializers.CharField()
    account_number = serializers.CharField()
    bank_or_wallet = serializers.CharField()
    status = serializers.ChoiceField(choices=Withdrawal.Status.values)
    transfer_reference = serializers.CharField(allow_null=True)
    note = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class WithdrawalCreateSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    method = serializers.ChoiceField(choices=Withdrawal.Method.values)
    account_name = serializers.CharField()
    account_number = serializers.CharField()
    bank_or_wallet = serializers.CharField()


def withdrawal_data(withdrawal: Withdrawal) -> dict[str, Any]:
    return {
        "id": withdrawal.pk,
        "amount": withdrawal.amount,
        "method": withdrawal.method,
        "account_name": withdrawal.account_name,
        "account_number": withdrawal.account_number,
        "bank_or_wallet": withdrawal.bank_or_wallet,
        "status": withdrawal.status,
        "transfer_reference": withdrawal.transfer_reference or None,
        "note": withdrawal.note or None,
        "created_at": iso(withdrawal.created_at),
        "decided_at": iso(withdrawal.decided_at),
    }


class WithdrawalsView(BuyerView):
    pagination_class = CursorPage

    @extend_schema(
        operation_id="withdrawal_create",
        summary="Withdraw earnings (resellers): the amount leaves the balance at once",
        request=WithdrawalCreateSerializer,
        responses={201: WithdrawalSerializer, **error_responses(400, 401, 402, 403, 413)},
    )
    def post(self, request: KeyedRequest) -> Response:
        body = json_object(request.data)
        withdrawal = withdrawal_request(
            reseller=request.user,
            amount=body.get("amount"),
            method=body.get("method"),
            account_name=body.get("account_name"),
            account_number=body.get("account_number"),
            bank_or_wallet=body.get("bank_or_wallet"),
        )
        return Response(withdrawal_data(withdrawal), status=201)

    @extend_schema(
        operation_id="withdrawals_list",
        summary="The account's withdrawals, newest first",
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("limit", int)],
        responses={200: WithdrawalSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        return CursorPage.answer(
            Withdrawal.objects.filter(reseller=request.user), request, self, withdrawal_data
        )


@csrf_exempt
@require_POST
def midtrans_notification(request: HttpRequest) -> JsonResponse:
    """Midtrans POSTs here on every change of a transaction. A 2xx tells it to stop; any
    other answer makes it send again later, which is what a passing outage needs."""
    try:
        notification = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        notification = None
    if not isinstance(notification, dict):
        body = error_body("invalid_request", "The notification must be a JSON object.")
        return JsonResponse(body, status=400)
    try:
        done = midtrans_notified(notification)
    except errors.Forbidden as exc:
        return JsonResponse(error_body("forbidden", exc.message), status=401)
    except errors.PaymentUnavailable as exc:
        return JsonResponse(error_body(exc.code, exc.message), status=503)
    return JsonResponse({"status": done})
