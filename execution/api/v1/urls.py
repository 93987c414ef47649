"""API v1 operations of the execution app, mounted at /api/v1/execution/ (one view per operation)."""

from __future__ import annotations

from django.urls import path

from execution.api.v1 import views

app_name = "execution"
urlpatterns = [
    path("exchange-accounts", views.ExchangeAccountListApi.as_view(), name="exchange-accounts"),
    path("mm-orders", views.MMOrderListApi.as_view(), name="mm-orders"),
    path("mm-orders/<int:pk>", views.MMOrderDetailApi.as_view(), name="mm-order"),
    path("mm-orders/<int:pk>/fund", views.MMOrderFundApi.as_view(), name="mm-order-fund"),
    path("mm-orders/<int:pk>/stop", views.MMOrderStopApi.as_view(), name="mm-order-stop"),
    path("mm-orders/<int:pk>/resume", views.MMOrderResumeApi.as_view(), name="mm-order-resume"),
    path("mm-orders/<int:pk>/withdraw-back", views.MMOrderWithdrawBackApi.as_view(), name="mm-order-withdraw-back"),
    path("mm-orders/<int:pk>/refund", views.MMOrderRefundApi.as_view(), name="mm-order-refund"),
    path("exchange-accounts/<int:pk>/revoke", views.ExchangeAccountRevokeApi.as_view(), name="exchange-account-revoke"),
]
