from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from accounts.forms import LoginForm

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("account/time-zone/", views.time_zone_settings, name="account-time-zone"),
    path("account/api/", views.api_settings, name="account-api"),
    path("account/api/key/", views.api_key_regenerate, name="account-api-key"),
    path("account/callback/", views.callback_settings, name="account-callback"),
    path(
        "account/callback/secret/",
        views.callback_secret_rotate,
        name="account-callback-secret",
    ),
    path("account/callback/test/", views.callback_test_send, name="account-callback-test"),
    path("account/callbacks/", views.callback_log, name="account-callback-log"),
    path(
        "account/callbacks/<id:delivery_id>/resend/",
        views.callback_resend_view,
        name="account-callback-resend",
    ),
]
