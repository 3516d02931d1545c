"""The modem-pool agent API (`X-AGENT-KEY`): sync, heartbeat, inbound SMS, and the open
orders its numbers are waiting on (read from orders: this module is the roof)."""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import AgentView, KeyedRequest
from modems.models import Operator
from modems.phone import PhoneNumberError, normalize_phone
from modems.services import ItemError, heartbeat_items, modems_heartbeat, modems_sync
from orders.representation import open_order_data
from orders.selectors import OPEN_ORDERS_MAX, open_orders_on_modems_of
from orders.services import sms_receive
from zerotp import errors
from zerotp.api import StrictCharField, error_responses, json_object, validated


def _batch(data: Any) -> list[Any]:
    body = json_object(data)
    modems = body.get("modems")
    if not isinstance(modems, list):
        raise errors.InvalidRequest(
            '"modems" must be a list of modem objects.', fields={"modems": ["Must be a list."]}
        )
    if len(modems) > settings.MODEM_BATCH_MAX:
        raise errors.PayloadTooLarge(
            f"A batch holds at most {settings.MODEM_BATCH_MAX} modems; this one has {len(modems)}."
        )
    return modems


class SyncItemSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    phone_number = serializers.CharField(required=False, allow_null=True)
    provider = serializers.CharField(required=False, max_length=64)
    signal = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=100)
    mapping = serializers.ChoiceField(choices=Operator.choices, required=False)


class SyncRequestSerializer(serializers.Serializer):
    modems = SyncItemSerializer(many=True)


class SyncItemErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    uid = serializers.CharField(allow_null=True)
    code = serializers.ChoiceField(
        choices=["invalid_request", "phone_number_conflict", "duplicate_uid"]
    )
    message = serializers.CharField()


SyncResponseSerializer = inline_serializer(
    "SyncResult",
    {
        "synced": serializers.IntegerField(),
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "errors": SyncItemErrorSerializer(many=True),
    },
)


class SyncView(AgentView):
    @extend_schema(
        operation_id="modem_sync",
        summary="Create or update the reseller's modems by uid (idempotent)",
        request=SyncRequestSerializer,
        responses={200: SyncResponseSerializer, **error_responses(400, 401, 403, 413)},
    )
    def post(self, request: KeyedRequest) -> Response:
        result = modems_sync(reseller=request.user, items=_batch(request.data))
        return Response(
            {
                "synced": result.synced,
                "created": result.created,
                "updated": result.updated,
                "errors": result.errors,
            }
        )


class HeartbeatItemSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    signal = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=100)
    can_order = serializers.BooleanField(required=False)


class HeartbeatRequestSerializer(serializers.Serializer):
    modems = HeartbeatItemSerializer(many=True)


HeartbeatResponseSerializer = inline_serializer(
    "HeartbeatResult",
    {
        "updated": serializers.IntegerField(),
        "unknown": serializers.ListField(child=serializers.CharField()),
    },
)


class HeartbeatView(AgentView):
    @extend_schema(
        operation_id="modem_heartbeat",
        summary="Mark modems seen now (online for MODEM_ONLINE_SECONDS)",
        request=HeartbeatRequestSerializer,
        responses={200: HeartbeatResponseSerializer, **error_responses(400, 401, 403, 413)},
    )
    def post(self, request: KeyedRequest) -> Response:
        try:
            items = heartbeat_items(_batch(request.data))
        except ItemError as exc:
            field = f"modems[{exc.index}]"
            raise errors.InvalidRequest(f"{field}: {exc}", fields={field: [str(exc)]}) from None
        updated, unknown = modems_heartbeat(reseller=request.user, items=items)
        return Response({"updated": updated, "unknown": unknown})


class InboundSmsSerializer(serializers.Serializer):
    uid = StrictCharField(max_length=64)
    phone_number = StrictCharField(required=False, allow_blank=True, allow_null=True)
    # "from" is a Python keyword: declared in get_fields.
    text = StrictCharField(max_length=2000, trim_whitespace=False)
    message_id = StrictCharField(required=False, allow_null=True, max_length=128)
    received_at = StrictCharField(required=False, allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = StrictCharField(max_length=100, allow_blank=True)
        return fields


SmsResultSerializer = inline_serializer(
    "InboundSmsResult",
    {
        "matched": serializers.BooleanField(),
        "order_id": serializers.IntegerField(allow_null=True),
        "otp": serializers.CharField(allow_null=True),
    },
)


def _received_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise errors.InvalidRequest(
            "received_at must be an ISO 8601 date and time.",
            fields={"received_at": ["Not an ISO 8601 date and time."]},
        )
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or moment.year < 2000:
        raise errors.InvalidRequest(
            "received_at is out of range.", fields={"received_at": ["Not a plausible time."]}
        )
    return moment


class InboundSmsView(AgentView):
    @extend_schema(
        operation_id="modem_inbound_sms",
        summary="Report an inbound SMS; it is matched to an order and the OTP extracted",
        request=InboundSmsSerializer,
        responses={200: SmsResultSerializer, **error_responses(400, 401, 403, 404, 413)},
    )
    def post(self, request: KeyedRequest) -> Response:
        data = validated(InboundSmsSerializer, request.data)
        phone = data.get("phone_number") or ""
        if phone:
            try:
                phone = normalize_phone(phone)
            except PhoneNumberError as exc:
                raise errors.InvalidRequest(str(exc), fields={"phone_number": [str(exc)]}) from None
        result = sms_receive(
            reseller=request.user,
            uid=data["uid"].strip(),
            sender=data["from"].strip(),
            text=data["text"],
            phone_number=phone,
            message_id=data.get("message_id") or None,
            received_at=_received_at(data.get("received_at")),
        )
        return Response(result.as_dict())


class OpenOrderSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    uid = serializers.CharField(help_text="The modem holding the number (the agent's name for it).")
    phone_number = serializers.CharField()
    application_id = serializers.IntegerField()
    application = serializers.CharField(help_text="The application's name, e.g. WhatsApp.")
    operator = serializers.ChoiceField(choices=Operator.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


OpenOrdersSerializer = inline_serializer("OpenOrders", {"orders": OpenOrderSerializer(many=True)})


class OpenOrdersView(AgentView):
    @extend_schema(
        operation_id="modem_orders",
        summary="The pending orders on the reseller's modems: which number waits for which SMS",
        description=(
            "Orders still waiting for their SMS (status pending, not past expires_at) on the "
            f"modems of the key's reseller, oldest first, at most {OPEN_ORDERS_MAX}."
        ),
        responses={200: OpenOrdersSerializer, **error_responses(401, 403)},
    )
    def get(self, request: KeyedRequest) -> Response:
        rows = open_orders_on_modems_of(request.user)
        return Response({"orders": [open_order_data(row) for row in rows]})
