"""Admin of the attestation app: the measurement allowlist. Every change goes through the services, which
write the audit log; entries are never edited or deleted, only added and removed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from attestation import services
from attestation.domain.allowlist import MeasurementFormatError, MeasurementUnpinnedError, normalize, require_pinned
from attestation.errors import InvalidMeasurement, MeasurementImageMismatch, MeasurementUnmeasuredWorkload
from attestation.models import AllowlistAudit, AttestationRecord, ExecutorRecord, MeasurementEntry
from attestation.selectors import required_rtmrs
from mrmarket.admin import ReadOnlyAdminMixin


class AllowlistAuditInline(ReadOnlyAdminMixin, admin.TabularInline[AllowlistAudit, MeasurementEntry]):
    model = AllowlistAudit
    fields = ("at", "action", "actor")
    readonly_fields = fields
    extra = 0
    can_delete = False
    allowed = frozenset({"change", "delete"})  # only adding is refused here


ENTRY_FIELDS = (
    "service",
    "mrtd",
    "rtmr0",
    "rtmr1",
    "rtmr2",
    "rtmr3",
    "image_digest",
    "build_version",
    "source_commit",
    "note",
)


class MeasurementEntryForm(forms.ModelForm[MeasurementEntry]):
    """The service's own checks as form errors: well-formed hex, and the required RTMRs pinned."""

    class Meta:
        model = MeasurementEntry
        fields = ENTRY_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is not None:
            return data
        try:
            normalize(str(data.get("mrtd", "")), "mrtd")
            rtmrs = tuple(normalize(str(data.get(f"rtmr{i}", "")), f"rtmr{i}", optional=True) for i in range(4))
            _, data["rtmr3"] = services.allowlist_image_rtmr3(str(data.get("image_digest", "")), rtmrs[3])
            require_pinned((*rtmrs[:3], data["rtmr3"]), required_rtmrs())
        except (MeasurementImageMismatch, MeasurementUnmeasuredWorkload) as exc:
            raise forms.ValidationError({"rtmr3": exc.message}) from None
        except InvalidMeasurement as exc:  # the image digest itself is malformed
            raise forms.ValidationError({"image_digest": exc.message}) from None
        except MeasurementUnpinnedError as exc:
            raise forms.ValidationError({f"rtmr{i}": str(exc) for i in exc.registers}) from None
        except MeasurementFormatError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(MeasurementEntry)
class MeasurementEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[MeasurementEntry]):
    form = MeasurementEntryForm
    list_display = ("service", "build_version", "source_commit", "mrtd", "added_by", "added_at", "removed_at")
    list_filter = ("service", "removed_at")
    search_fields = ("mrtd", "build_version", "source_commit", "note")
    fields = ENTRY_FIELDS
    inlines = (AllowlistAuditInline,)
    actions = ("remove",)
    allowed = frozenset({"add", "change"})  # added through the form (the service), removed by the action

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return tuple(self.fields) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: MeasurementEntry, form: Any, change: bool) -> None:
        if change:
            return  # entries are immutable; remove and add instead
        entry = services.allowlist_add(
            actor_id=request.user.pk,  # type: ignore[arg-type]
            mrtd=obj.mrtd,
            rtmrs=(obj.rtmr0, obj.rtmr1, obj.rtmr2, obj.rtmr3),
            build_version=obj.build_version,
            source_commit=obj.source_commit,
            service=obj.service,
            note=obj.note,
            image_digest=obj.image_digest,
        )
        obj.pk = entry.pk

    @admin.action(
        permissions=["change"], description="Remove from the allowlist (executors running it lose trust at once)"
    )
    def remove(self, request: HttpRequest, queryset: QuerySet[MeasurementEntry]) -> None:
        for entry in queryset:
            services.allowlist_remove(actor_id=request.user.pk, entry_id=entry.pk)  # type: ignore[arg-type]
        self.message_user(request, f"Removed {queryset.count()} entr(y/ies).", messages.WARNING)


class AttestationRecordInline(ReadOnlyAdminMixin, admin.TabularInline[AttestationRecord, ExecutorRecord]):
    """The executor's verification history: every attempt, passed or failed, with the reason."""

    model = AttestationRecord
    fields = ("verified_at", "ok", "reason", "tcb_status", "hardware_attested", "mrtd", "signing_key", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)
    allowed = frozenset({"change", "delete"})  # only adding is refused here


@admin.register(ExecutorRecord)
class ExecutorRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[ExecutorRecord]):
    """The executor registry: verification state, measurement, TCB status and history. Read-only: state changes
    come from verification and from allowlist removal."""

    list_display = (
        "url",
        "state",
        "attested",
        "tcb_status",
        "build_version",
        "last_verified_at",
        "verification_failures",
        "uptime",
        "reports_accepted",
        "reports_refused",
    )
    list_filter = ("state", "hardware_attested", "tcb_status")
    readonly_fields = tuple(f.name for f in ExecutorRecord._meta.fields)
    inlines = (AttestationRecordInline,)
    allowed = frozenset({"change"})  # every field is read-only: the change page only shows

    @admin.display(description="uptime")
    def uptime(self, obj: ExecutorRecord) -> str:
        return f"{obj.uptime_permille / 10:.1f} % of {obj.checks_total} checks" if obj.checks_total else "—"

    @admin.display(description="attested")
    def attested(self, obj: ExecutorRecord) -> str:
        if obj.state != ExecutorRecord.State.VERIFIED:
            return "no"
        return "hardware" if obj.hardware_attested else "NOT hardware-attested (dev root)"
