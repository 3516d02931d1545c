from django.urls import path

from orders import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/operators/", views.operator_choices, name="operator-choices"),
    path("dashboard/active/", views.active_orders_partial, name="active-orders"),
    path("orders/", views.history, name="order-history"),
    path("orders/<id:order_id>/cancel/", views.order_cancel_view, name="order-cancel"),
    path("orders/<id:order_id>/finish/", views.order_finish_view, name="order-finish"),
    path("transactions/", views.transactions, name="transactions"),
    path("staff/", views.staff, name="staff-overview"),
    path("staff/numbers/", views.staff_numbers, name="staff-numbers"),
    path("reseller/numbers/", views.reseller_numbers, name="reseller-numbers"),
]
