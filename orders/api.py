"""The buyer's order endpoints and the public catalogue."""

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import BuyerView, KeyedRequest
from modems.models import Operator
from orders import callbacks, services
from orders.models import CallbackDelivery, OrderStatus
from orders.representation import iso, new_order_json, order_data
from orders.selectors import (
    deliveries_of,
    order_and_messages,
    order_of,
    orders_of,
    services_catalogue,
)
from zerotp import errors
from zerotp.api import (
    CursorPage,
    StrictCharField,
    StrictIntegerField,
    error_responses,
    validated,
)
from zerotp.converters import MAX_ID

OperatorPrice = inline_serializer(
    "OperatorPrice", {"price": serializers.IntegerField(), "stock": serializers.IntegerField()}
)


class ServiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    code = serializers.CharField()
    price = serializers.IntegerField(allow_null=True, help_text="The normal operator's price.")
    stock = serializers.IntegerField(help_text="Numbers the normal operator can hand out now.")
    operators = serializers.DictField(child=OperatorPrice)


class ServicesView(APIView):
    authentication_classes: list = []

    @extend_schema(
        operation_id="services",
        summary="Applications with price and stock per operator (public)",
        auth=[],
        responses={200: ServiceSerializer(many=True), **error_responses()},
    )
    def get(self, request: Request) -> Response:
        return Response(services_catalogue())


class MessageSerializer(serializers.Serializer):
    # "from" is a Python keyword, hence the declared name below.
    text = serializers.CharField()
    otp_code = serializers.CharField()
    received_at = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.CharField()
        return fields


class OrderSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=OrderStatus.values)
    phone_number = serializers.CharField()
    application_id = serializers.IntegerField()
    operator = serializers.ChoiceField(choices=Operator.choices)
    price = serializers.IntegerField()
    custom_user_id = serializers.CharField(allow_null=True)
    otp_code = serializers.CharField(allow_null=True)
    sms_text = serializers.CharField(allow_null=True)
    messages = MessageSerializer(many=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class OrderCreateSerializer(serializers.Serializer):
    application_id = StrictIntegerField(min_value=1, max_value=MAX_ID)
    operator = serializers.ChoiceField(choices=Operator.choices, default=Operator.NORMAL)
    custom_user_id = StrictCharField(
        required=False, allow_null=True, max_length=64, trim_whitespace=False
    )


_OPERATORS = frozenset(Operator.values)


def _order_request(data: Any) -> dict[str, Any]:
    """OrderCreateSerializer's validated data. The body bots send by the thousand, an
    application id and perhaps an operator, is checked here without building the
    serializer; anything else goes through it, errors and all."""
    if type(data) is dict and data.keys() <= {"application_id", "operator"}:
        application_id = data.get("application_id")
        operator = data.get("operator", Operator.NORMAL.value)
        if (
            type(application_id) is int
            and 1 <= application_id <= MAX_ID
            and (type(operator) is str and operator in _OPERATORS)
        ):
            return {"application_id": application_id, "operator": operator}
    return validated(OrderCreateSerializer, data)


class OrdersView(BuyerView):
    pagination_class = CursorPage

    @extend_schema(
        operation_id="order_create",
        summary="Order a number",
        request=OrderCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                location=OpenApiParameter.HEADER,
                required=False,
                description=(
                    "At most 255 characters. The same key and body within 24 h returns the "
                    "first 201 answer and charges once; another body is a 409."
                ),
            )
        ],
        responses={201: OrderSerializer, **error_responses(400, 401, 402, 403, 404, 409, 413, 429)},
    )
    def post(self, request: KeyedRequest) -> HttpResponse:
        data = _order_request(request.data)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (
            key.strip() and len(key) <= 255 and key.isascii() and key.isprintable()
        ):
            raise errors.InvalidRequest(
                "Idempotency-Key must be 1 to 255 printable ASCII characters."
            )
        created = services.order_create(
            buyer=request.user,
            application_id=data["application_id"],
            operator=data["operator"],
            custom_user_id=data.get("custom_user_id"),
            idempotency=services.Idempotency(key, new_order_json) if key is not None else None,
        )
        if created.answer is None:
            return Response(order_data(created.order, messages=[]), status=201)
        answer = HttpResponse(created.answer, status=201, content_type="application/json")
        if created.replayed:
            answer["Idempotent-Replayed"] = "true"
        return answer

    @extend_schema(
        operation_id="orders_list",
        summary="The account's orders, newest first",
        parameters=[
            OpenApiParameter("status", enum=OrderStatus.values, required=False),
            OpenApiParameter("cursor", str, required=False),
            OpenApiParameter("limit", int, required=False, description="1 to 200, default 50."),
        ],
        responses={200: OrderSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in OrderStatus.values:
            raise errors.InvalidRequest(
                f"status must be one of {', '.join(OrderStatus.values)}.",
                fields={"status": ["Unknown status."]},
            )
        return CursorPage.answer(orders_of(request.user, status), request, self, order_data)


class OrderView(BuyerView):
    @extend_schema(
        operation_id="order_read",
        summary="Order status and the OTP",
        responses={200: OrderSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: KeyedRequest, order_id: int) -> Response:
        found = order_and_messages(request.user, order_id)
        if found is None:
            raise errors.NotFound(f"There is no order {order_id}.")
        return Response(order_data(*found))


class OrderCancelView(BuyerView):
    @extend_schema(
        operation_id="order_cancel",
        summary="Cancel a pending order and refund its price (safe to repeat)",
        request=None,
        responses={200: OrderSerializer, **error_responses(401, 403, 404, 409)},
    )
    def post(self, request: KeyedRequest, order_id: int) -> Response:
        order = services.order_cancel(buyer=request.user, order_id=order_id)
        # Only a pending order can be cancelled, and no SMS ever matches it afterwards.
        return Response(order_data(order, messages=[]))


class OrderFinishView(BuyerView):
    @extend_schema(
        operation_id="order_finish",
        summary="Close a completed order (safe to repeat)",
        request=None,
        responses={200: OrderSerializer, **error_responses(401, 403, 404, 409)},
    )
    def post(self, request: KeyedRequest, order_id: int) -> Response:
        order = services.order_finish(buyer=request.user, order_id=order_id)
        finished = order_of(request.user, order.pk)
        assert finished is not None  # the buyer's own order, finished just now
        return Response(order_data(finished))


class CallbackAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    duration_ms = serializers.IntegerField()
    response_body = serializers.CharField(help_text="The first 1 KB of the answer.")


class CallbackDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    webhook_id = serializers.CharField(help_text="The webhook-id header, the same on every retry.")
    order_id = serializers.IntegerField(allow_null=True)
    event = serializers.ChoiceField(choices=CallbackDelivery.Event.choices)
    status = serializers.ChoiceField(choices=CallbackDelivery.Status.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_attempt = CallbackAttemptSerializer(allow_null=True)


def delivery_data(delivery: CallbackDelivery) -> dict[str, Any]:
    attempts = list(delivery.attempt_log.all()[:1])
    last = attempts[0] if attempts else None
    return {
        "id": delivery.pk,
        "webhook_id": delivery.webhook_id,
        "order_id": delivery.order_id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "last_attempt": None
        if last is None
        else {
            "at": iso(last.at),
            "status_code": last.status_code,
            "error": last.error,
            "duration_ms": last.duration_ms,
            "response_body": last.response_body,
        },
    }


class CallbacksView(BuyerView):
    pagination_class = CursorPage

    @extend_schema(
        operation_id="callbacks_list",
        summary="The callback delivery log, newest first",
        parameters=[
            OpenApiParameter("order_id", int, required=False),
            OpenApiParameter("status", enum=CallbackDelivery.Status.values, required=False),
            OpenApiParameter("cursor", str, required=False),
            OpenApiParameter("limit", int, required=False, description="1 to 200, default 50."),
        ],
        responses={200: CallbackDeliverySerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        params = request.query_params
        status = params.get("status")
        if status is not None and status not in CallbackDelivery.Status.values:
            raise errors.InvalidRequest(
                f"status must be one of {', '.join(CallbackDelivery.Status.values)}.",
                fields={"status": ["Unknown status."]},
            )
        order_id = params.get("order_id")
        if order_id is not None and not (order_id.isdigit() and int(order_id) <= MAX_ID):
            raise errors.InvalidRequest(
                "order_id must be a whole number.", fields={"order_id": ["Not a number."]}
            )
        deliveries = deliveries_of(
            request.user,
            # Checked above: a given order_id is all digits, never empty.
            order_id=None if order_id is None else int(order_id),
            status=status,
        )
        return CursorPage.answer(deliveries, request, self, delivery_data)


class CallbackResendView(BuyerView):
    @extend_schema(
        operation_id="callback_resend",
        summary="Send a delivery again now (same body, same webhook-id)",
        request=None,
        responses={202: CallbackDeliverySerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request: KeyedRequest, delivery_id: int) -> Response:
        delivery = callbacks.callback_resend(buyer=request.user, delivery_id=delivery_id)
        return Response(delivery_data(delivery), status=202)


CallbackTestResult = inline_serializer(
    "CallbackTestResult",
    {
        "delivered": serializers.BooleanField(),
        "status_code": serializers.IntegerField(allow_null=True),
        "error": serializers.CharField(allow_null=True),
        "duration_ms": serializers.IntegerField(),
    },
)


class CallbackTestView(BuyerView):
    @extend_schema(
        operation_id="callback_test",
        summary='Send a signed test event ("status": "test") to the configured URL now',
        request=None,
        responses={200: CallbackTestResult, **error_responses(400, 401, 403)},
    )
    def post(self, request: KeyedRequest) -> Response:
        _, outcome = callbacks.callback_test(buyer=request.user)
        return Response(
            {
                "delivered": outcome.delivered,
                "status_code": outcome.status_code,
                "error": outcome.error,
                "duration_ms": outcome.duration_ms,
            }
        )
