"""The lead list's "Add to list" bulk action, registered on leads.bulk by the
app config: the selected (or all matching) leads join a static list."""

from __future__ import annotations

from django.template.defaultfilters import pluralize

from accounts.permissions import Perm
from leads.bulk import BulkAction
from nurture.models import ListKind, MembershipSource, NurtureList
from nurture.services.common import ListInvalid
from nurture.services.lists import list_add_leads

FIELD = "nurture_list"


def static_list_choices() -> list[tuple[str, str]]:
    lists = NurtureList.objects.filter(kind=ListKind.STATIC).order_by("name")
    return [(str(pk), name) for pk, name in lists.values_list("pk", "name")]


def add_to_list(request, leads) -> str:
    raw = request.POST.get(FIELD, "")
    nurture_list = (
        NurtureList.objects.filter(kind=ListKind.STATIC, pk=raw).first() if raw.isdigit() else None
    )
    if nurture_list is None:
        raise ListInvalid("Choose a static list to add the leads to.")
    ids = list(leads.order_by().values_list("pk", flat=True))
    added = list_add_leads(nurture_list=nurture_list, lead_ids=ids, source=MembershipSource.ACTION)
    return f"{added} lead{pluralize(added)} added to {nurture_list}."


ADD_TO_LIST = BulkAction(
    "add_to_list",
    "Add to list…",
    Perm.MANAGE_NURTURE,
    add_to_list,
    field=FIELD,
    field_label="List —",
    options=static_list_choices,
    options_model=NurtureList,
)
