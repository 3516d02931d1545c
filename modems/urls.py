from django.urls import path

from modems import views

urlpatterns = [
    path("reseller/", views.reseller, name="reseller"),
    path("reseller/enable/", views.reseller_enable_view, name="reseller-enable"),
    path("reseller/key/", views.agent_key_regenerate, name="reseller-key"),
    path("reseller/modems/", views.modems_partial, name="reseller-modems"),
    path("reseller/sms/", views.sms_log, name="reseller-sms"),
    path("reseller/agent/zerotp-agent.pyz", views.agent_download, name="agent-download"),
]
