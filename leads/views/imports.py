"""CSV import pages: list + upload, mapping + preview, progress, error report."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.forms_imports import ImportMappingForm, ImportUploadForm
from leads.importing import DELIMITER_LABELS, describe, format_size, suggest_mapping
from leads.models import ImportJob, ImportStatus
from leads.services import imports as services

JOBS_PER_PAGE = 25
ACTIVE = (ImportStatus.QUEUED, ImportStatus.RUNNING)


def _detail(request, job: ImportJob):
    return redirect("leads:import_detail", org_slug=request.organization.slug, job_id=job.pk)


def _job(job_id: int) -> ImportJob:
    return get_tenant_object_or_404(
        ImportJob.objects.select_related("campaign", "created_by"), pk=job_id
    )


@org_view(Perm.IMPORT_LEADS)
def import_list(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.import_job_create(
                organization=request.organization,
                user=request.user,
                upload=form.cleaned_data["file"],
            )
        except LeadflowError as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(
                request, f"{job.total_rows:,} rows found. Check how the columns will be imported."
            )
            return _detail(request, job)
    page = Paginator(services.import_jobs(), JOBS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "any_active": any(job.status in ACTIVE for job in page),
    }
    template = "leads/import_list.html#jobs" if request.htmx else "leads/import_list.html"
    return render(request, template, context, status=400 if form.errors else 200)


def _mapping_page(request, job: ImportJob):
    action = request.POST.get("action", "preview") if request.method == "POST" else ""
    if action == "discard":
        try:
            services.import_job_discard(job=job)
        except LeadflowError as exc:
            messages.error(request, str(exc))
            return _detail(request, job)
        messages.success(request, f"{job.original_name} was discarded.")
        return redirect("leads:import_list", org_slug=request.organization.slug)
    try:
        header = services.import_job_header(job=job)
    except LeadflowError as exc:
        return render(request, "leads/import_detail.html", {"job": job, "file_error": str(exc)})
    form = ImportMappingForm(
        request.POST if action else None,
        header=header,
        mapping=job.mapping or suggest_mapping(header),
    )
    status = 200
    if action == "start":
        if form.is_valid():
            campaign, consent_basis = form.settings()
            try:
                services.import_job_start(
                    job=job, mapping=form.mapping(), campaign=campaign, consent_basis=consent_basis
                )
            except LeadflowError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Importing {job.original_name}…")
                return _detail(request, job)
        status = 400
    elif action:
        form.is_valid()  # a preview of whatever is chosen so far, errors shown with it
    campaign, consent_basis = form.settings()
    try:
        preview = services.import_preview(
            job=job, mapping=form.mapping(), campaign=campaign, consent_basis=consent_basis
        )
    except LeadflowError as exc:
        return render(request, "leads/import_detail.html", {"job": job, "file_error": str(exc)})
    context = {
        "job": job,
        "form": form,
        "preview": preview,
        "columns": [(field, preview.samples.get(field.label, [])) for field in form.columns()],
        "delimiter_label": DELIMITER_LABELS.get(job.delimiter, job.delimiter),
        "size_label": format_size(job.size),
    }
    if request.htmx and action == "preview":
        return render(request, "leads/import_detail.html#preview", context)
    return render(request, "leads/import_detail.html", context, status=status)


@org_view(Perm.IMPORT_LEADS)
def import_detail(request, job_id: int):
    job = _job(job_id)
    if job.status == ImportStatus.UPLOADED:
        return _mapping_page(request, job)
    if request.method == "POST":
        if request.POST.get("action") == "resume":
            try:
                services.import_job_resume(job=job, membership=request.membership)
            except LeadflowError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "The import will carry on where it stopped.")
        return _detail(request, job)
    context = {
        "job": job,
        "can_resume_stalled": request.membership.has_perm(Perm.MANAGE_ORGANIZATION),
        "mapped_columns": list(describe(job.mapping or {})),
        "delimiter_label": DELIMITER_LABELS.get(job.delimiter, job.delimiter),
        "size_label": format_size(job.size),
        "consent_label": services.ConsentBasis(job.consent_basis).label
        if job.consent_basis in services.ConsentBasis.values
        else "",
    }
    return render(request, "leads/import_detail.html", context)


@require_GET
@org_view(Perm.IMPORT_LEADS)
def import_progress(request, job_id: int):
    job = _job(job_id)
    if not request.htmx:
        return _detail(request, job)
    context = {
        "job": job,
        "can_resume_stalled": request.membership.has_perm(Perm.MANAGE_ORGANIZATION),
    }
    return render(request, "leads/import_detail.html#progress", context)


@require_GET
@org_view(Perm.IMPORT_LEADS)
def import_errors(request, job_id: int):
    job = _job(job_id)
    if not job.error_report:
        messages.info(request, "This import has no error report (yet).")
        return _detail(request, job)
    try:
        report = job.error_report.open("rb")
    except FileNotFoundError:
        messages.error(request, "The error report file is missing.")
        return _detail(request, job)
    stem = job.original_name.rsplit(".", 1)[0] or "import"
    return FileResponse(
        report, as_attachment=True, filename=f"{stem}-errors.csv", content_type="text/csv"
    )
