from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.negotiation import DefaultContentNegotiation

import zerotp.converters  # noqa: F401  (registers <id:...> before any route uses it)
from accounts.api import AccountView, BalanceView
from billing.api import TopUpsView, TopUpView, WithdrawalsView, midtrans_notification
from modems.api import HeartbeatView, InboundSmsView, OpenOrdersView, SyncView
from orders.api import (
    CallbackResendView,
    CallbacksView,
    CallbackTestView,
    OrderCancelView,
    OrderFinishView,
    OrdersView,
    OrderView,
    ServicesView,
)
from orders.sms_activate import HandlerApiView
from zerotp.api import api_not_found

api_v1 = [
    path("api/v1/services", ServicesView.as_view(), name="api-services"),
    path("api/v1/orders", OrdersView.as_view(), name="api-orders"),
    path("api/v1/orders/<id:order_id>", OrderView.as_view(), name="api-order"),
    path("api/v1/orders/<id:order_id>/cancel", OrderCancelView.as_view(), name="api-order-cancel"),
    path("api/v1/orders/<id:order_id>/finish", OrderFinishView.as_view(), name="api-order-finish"),
    path("api/v1/balance", BalanceView.as_view(), name="api-balance"),
    path("api/v1/topups", TopUpsView.as_view(), name="api-topups"),
    path("api/v1/topups/<id:topup_id>", TopUpView.as_view(), name="api-topup"),
    path("api/v1/withdrawals", WithdrawalsView.as_view(), name="api-withdrawals"),
    path("api/v1/account", AccountView.as_view(), name="api-account"),
    path("api/v1/callbacks", CallbacksView.as_view(), name="api-callbacks"),
    path("api/v1/callbacks/test", CallbackTestView.as_view(), name="api-callback-test"),
    path(
        "api/v1/callbacks/<id:delivery_id>/resend",
        CallbackResendView.as_view(),
        name="api-callback-resend",
    ),
    path("api/modem/sync", SyncView.as_view(), name="api-modem-sync"),
    path("api/modem/heartbeat", HeartbeatView.as_view(), name="api-modem-heartbeat"),
    path("api/modem/inbound-sms", InboundSmsView.as_view(), name="api-modem-inbound-sms"),
    path("api/modem/orders", OpenOrdersView.as_view(), name="api-modem-orders"),
]

handler400 = "zerotp.middleware.bad_request"
handler500 = "zerotp.middleware.server_error"

urlpatterns = [
    *api_v1,
    path(
        "api/schema/",
        SpectacularAPIView.as_view(content_negotiation_class=DefaultContentNegotiation),
        name="api-schema",
    ),
    path(
        "api/docs/",
        # The split view serves its set-up script as a file: no inline script for the CSP.
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", content_negotiation_class=DefaultContentNegotiation
        ),
        name="api-docs",
    ),
    re_path(r"^api/", api_not_found),
    path(
        "payments/midtrans/notification",
        midtrans_notification,
        name="payments-midtrans-notification",
    ),
    # The sms-activate protocol, where its clients look for it (docs/SMS-ACTIVATE.md).
    path("stubs/handler_api.php", HandlerApiView.as_view(), name="sms-activate"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("accounts.urls")),
    path("", include("orders.urls")),
    path("", include("modems.urls")),
    path("", include("billing.urls")),
    path("admin/", admin.site.urls),
]
