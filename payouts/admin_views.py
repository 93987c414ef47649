"""The operator panel's pages in the admin (registered by `payouts.admin` on the admin site): thin views over
`payouts.operator_panel` (reads) and `execution.alerts` (acknowledge, resolve). A superuser sees every operator;
any other staff user sees their own panel only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from execution import alerts
from execution.errors import AlertNotYours, AlertUnknown, ExecutionError
from mrmarket.errors import NotFound
from payouts import operator_panel

ALERT_ACTIONS = {"acknowledge": alerts.alert_acknowledge, "resolve": alerts.alert_resolve}


def _may_see(viewer: Any, operator_id: int) -> bool:
    return bool(viewer.is_superuser or viewer.pk == operator_id)


@require_GET
def operator_panel_index(request: HttpRequest) -> HttpResponse:
    """A superuser's list of operators; anyone else's own panel."""
    if not request.user.is_superuser:
        return _panel(request, request.user)
    context = {
        **admin.site.each_context(request),
        "title": "Operators",
        "index": operator_panel.operator_index(viewer=request.user),
    }
    return TemplateResponse(request, "admin/operator_index.html", context)


@require_GET
def operator_panel_page(request: HttpRequest, user_id: int) -> HttpResponse:
    if not _may_see(request.user, user_id):
        raise PermissionDenied("an operator sees their own panel only")
    try:
        operator = operator_panel.operator_get(user_id=user_id)
    except NotFound:
        raise Http404("no such operator") from None
    return _panel(request, operator)


def _panel(request: HttpRequest, operator: Any) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": f"Operator {operator.get_username()}",
        "panel": operator_panel.operator_panel(operator=operator, viewer=request.user),
        "here": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/operator_panel.html", context)


@require_POST
def operator_alert_action(request: HttpRequest, alert_id: int, action: str) -> HttpResponse:
    """Acknowledge or resolve one alert (a form's POST, CSRF-checked by the admin), then back to the page it came
    from. An unknown alert is a 404 and one of another operator's a 403; one already handled says so on the page.
    Nothing changes in any of these."""
    act = ALERT_ACTIONS.get(action)
    if act is None:
        raise Http404("no such action")
    try:
        alert = act(alert_id=alert_id, user=request.user)
    except AlertUnknown:
        raise Http404("no such alert") from None
    except AlertNotYours as exc:
        raise PermissionDenied(exc.message) from None
    except ExecutionError as exc:
        messages.error(request, f"Alert {alert_id}: {exc.message} ({exc.code})")
    else:
        done = "acknowledged" if action == "acknowledge" else "resolved"
        messages.success(request, f"Alert {alert.pk} {done}.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("admin:operator-panel")
    return HttpResponseRedirect(back, status=303)
