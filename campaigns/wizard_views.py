"""The creator wizard at /campaigns/new: four server-rendered form steps and a review, each working without
JavaScript; a JSON check per step for live validation (static/js/wizard.js); the mirroring status the wallet module
polls after signing. The creator is the address signed in with Ethereum; the draft lives in their session.
Views are thin: the forms validate (campaigns.wizard_forms), campaigns.wizard keeps the draft and prepares."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import selectors
from campaigns.domain.templates import TEMPLATES
from campaigns.domain.wizard import DAY, STEPS, furthest_step, reachable
from campaigns.errors import ChainUnavailable
from campaigns.node import NODE_FAILURES
from campaigns.wizard import (
    Draft,
    campaign_wizard_review,
    draft_clear,
    draft_get,
    draft_save_step,
    draft_state,
)
from campaigns.wizard_forms import FORMS, TemplateExample, WizardContext, WizardForm, template_card
from mrmarket.errors import ApplicationError
from mrmarket.siwe_views import served_chain_id, signed_in_address

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
TITLES = {
    "template": "1. Template",
    "market": "2. Market",
    "budget": "3. Budget and dates",
    "scoring": "4. Scoring",
    "review": "5. Review and sign",
}


# A view that meets a node failure (campaigns.node.NODE_FAILURES) says so with the typed 503; the draft is untouched.


def chain_answers(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NODE_FAILURES as exc:
            refused = ChainUnavailable(f"the chain's node does not answer ({type(exc).__name__})")
            if request.path.endswith("/check") or request.path.endswith("/status"):
                return JsonResponse(
                    {"code": refused.code, "message": refused.message, "extra": {}}, status=refused.status
                )
            context = {"title": "Chain unavailable", "nav": _nav("template", {}), "refused": refused}
            return render(request, "campaigns/wizard/unavailable.html", context, status=refused.status)

    return wrapped


def _sign_in(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    get_token(request)  # the sign-in script posts with the CSRF token from its cookie
    return render(request, "campaigns/wizard/sign_in.html", {"nav": _nav("template", {})}, status=status)


def _nav(current: str, done: dict[str, bool]) -> list[dict[str, Any]]:
    return [
        {
            "step": step,
            "title": TITLES[step],
            "current": step == current,
            "open": reachable(step, done),
            "done": bool(done.get(step)),
            "url": reverse("campaign-wizard-review")
            if step == "review"
            else reverse("campaign-wizard-step", args=[step]),
        }
        for step in STEPS
    ]


def _step_url(step: str) -> str:
    return reverse("campaign-wizard-review") if step == "review" else reverse("campaign-wizard-step", args=[step])


@never_cache
@chain_answers
@require_GET
def wizard_start(request: HttpRequest) -> HttpResponse:
    """Resume the draft at its furthest valid step (the first missing, or the first that no longer validates)."""
    creator = signed_in_address(request)
    if creator is None:
        return _sign_in(request)
    state = draft_state(draft_get(request.session, creator=creator))
    return redirect(_step_url(state.failed.step if state.failed else furthest_step(state.done)))


def _initial(step: str, draft: Draft, form_class: type[WizardForm], context: WizardContext) -> WizardForm:
    if step in draft.steps:
        form = form_class(draft.steps[step], context=context)
        form.is_valid()  # a stored step: its facts (read while validating) and, if it went stale, its errors
        return form
    return form_class(context=context)


@never_cache
@chain_answers
@require_http_methods(["GET", "POST"])
def wizard_step(request: HttpRequest, step: str) -> HttpResponse:
    """Show one step (GET) or take its form (POST: a valid step is kept in the draft, and the next step opens)."""
    form_class = FORMS.get(step)
    if form_class is None:
        raise Http404(f"no wizard step {step!r}")
    creator = signed_in_address(request)
    if creator is None:
        return _sign_in(request, status=403 if request.method == "POST" else 200)
    draft = draft_get(request.session, creator=creator)
    state = draft_state(draft, upto=step)
    if state.failed is not None or not reachable(step, state.done):
        return redirect("campaign-wizard")
    if request.method == "POST":
        form = form_class(request.POST, context=state.context)
        if form.is_valid():
            draft_save_step(request.session, draft=draft, form=form)
            return redirect(_step_url(STEPS[STEPS.index(step) + 1]))
        status = 400
    else:
        form = _initial(step, draft, form_class, state.context)
        status = 200
    context: dict[str, Any] = {
        "step": step,
        "title": TITLES[step],
        "form": form,
        "facts": form.facts(),  # after validation: a bound form's facts are read while it validates
        "nav": _nav(step, state.done),
        "creator": creator,
        "wizard": state.context,
    }
    if step == "budget":
        context["known_tokens"] = selectors.known_reward_tokens(chain_id=served_chain_id())
    if step == "template":
        example = TemplateExample(request.GET or None)
        context["example"] = example
        context["cards"] = [template_card(t, example.example()) for t in TEMPLATES.values()]
    return render(request, f"campaigns/wizard/{step}.html", context, status=status)


@never_cache
@chain_answers
@require_POST
def wizard_check(request: HttpRequest, step: str) -> JsonResponse:
    """Live validation: the step's form as posted → `{"errors": {field: [message]}, "facts": {...}}`; keeps nothing."""
    form_class = FORMS.get(step)
    if form_class is None:
        raise Http404(f"no wizard step {step!r}")
    creator = signed_in_address(request)
    if creator is None:
        return JsonResponse(
            {"code": "sign_in_required", "message": "sign in with your wallet to create a campaign", "extra": {}},
            status=403,
        )
    state = draft_state(draft_get(request.session, creator=creator), upto=step)
    if state.failed is not None or not reachable(step, state.done):
        return JsonResponse(
            {"code": "step_not_open", "message": "complete the earlier steps first", "extra": {}}, status=409
        )
    form = form_class(request.POST, context=state.context)
    form.is_valid()
    errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    return JsonResponse({"errors": errors, "facts": form.facts()})


@never_cache
@chain_answers
@require_GET
def wizard_review(request: HttpRequest) -> HttpResponse:
    """The canonical metadata and its hash, the predicted address, the cost and the gas; the signing section."""
    creator = signed_in_address(request)
    if creator is None:
        return _sign_in(request)
    draft = draft_get(request.session, creator=creator)
    state = draft_state(draft)
    if state.failed is not None or furthest_step(state.done) != "review":
        return redirect("campaign-wizard")
    context: dict[str, Any] = {
        "step": "review",
        "title": TITLES["review"],
        "nav": _nav("review", state.done),
        "creator": creator,
    }
    try:
        review = campaign_wizard_review(
            draft=draft,
            state=state,
            uri_base=request.build_absolute_uri("/api/v1/campaigns/metadata"),
            created_by_id=request.user.pk if request.user.is_authenticated else None,
        )
    except ApplicationError as exc:
        context["refused"] = exc
        return render(request, "campaigns/wizard/review.html", context, status=exc.status)
    address = review.prepared.predicted_address
    context.update(
        review=review,
        exists=selectors.campaign_get(chain_id=review.chain_id, address=address) is not None,
        duration_days=(state.context.budget["end"] - state.context.budget["start"]) // DAY,
        start_text=datetime.fromtimestamp(state.context.budget["start"], UTC).strftime("%Y-%m-%d %H:%M UTC"),
        end_text=datetime.fromtimestamp(state.context.budget["end"], UTC).strftime("%Y-%m-%d %H:%M UTC"),
        wizard=state.context,
        signing=review.signing(
            status_url=f"{reverse('campaign-wizard-status')}?address={address}",
            campaign_url=f"/campaigns/{review.chain_id}/{address.lower()}/",
        ),
    )
    return render(request, "campaigns/wizard/review.html", context)


@never_cache
@chain_answers
@require_GET
def wizard_status(request: HttpRequest) -> JsonResponse:
    """`?address=0x…` → `{"mirrored": bool, "campaign_url": str}`: whether the indexer has mirrored the campaign."""
    address = request.GET.get("address", "")
    if not ADDRESS_RE.match(address):
        return JsonResponse(
            {"code": "invalid_address", "message": "address: 0x and 40 hexadecimal digits", "extra": {}}, status=400
        )
    chain_id = served_chain_id()
    mirrored = selectors.campaign_get(chain_id=chain_id, address=address) is not None
    return JsonResponse({"mirrored": mirrored, "campaign_url": f"/campaigns/{chain_id}/{address.lower()}/"})


@never_cache
@require_POST
def wizard_restart(request: HttpRequest) -> HttpResponse:
    """Start over: the draft (and its salt) is dropped."""
    draft_clear(request.session)
    return redirect("campaign-wizard")
