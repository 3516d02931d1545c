from django.urls import path

from billing import views

urlpatterns = [
    path("topup/", views.topup_page, name="topup"),
    path("topup/<id:topup_id>/", views.topup_detail, name="topup-detail"),
    path("topup/midtrans/finish/", views.midtrans_finish, name="topup-midtrans-finish"),
    path("reseller/withdrawals/", views.withdrawals_page, name="withdrawals"),
    path("staff/finance/", views.finance, name="finance"),
    path("staff/finance/ledger.csv", views.ledger_csv, name="finance-ledger-csv"),
]
