"""Every form of the project offers only its organization's objects and members.

Users and memberships are not tenant models, so the scope guard cannot stop a
form from listing another organization's people: this test does. It discovers
every django Form/ModelForm and django-filter FilterSet by importing the apps'
modules, builds each one for an organization (keyword arguments are supplied by
name from ARGUMENTS; a form that needs one the walk does not know fails), and
checks every choice it offers against two populated tenants.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from pathlib import Path

import django_filters
import pytest
from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django_scopes import scopes_disabled

from accounts.models import Membership, Organization, Role, User
from leadflow.core.tenancy import tenant_scope
from tests import factories as f

# Any label carrying this belongs to the other tenant and must never be offered.
FOREIGN = "Zanzibar"
# The other tenant's users and memberships get ids no real choice list uses
# (small integers such as weekdays or positions would collide otherwise).
FOREIGN_PK_BASE = 990_000

SKIPPED_MODULES = ("migrations", "wsgi", "asgi", "settings", "management")


def project_modules():
    root = Path(settings.BASE_DIR).resolve()
    for config in apps.get_app_configs():
        # The project's apps sit at the top of the repository; a virtualenv inside
        # it (as CI makes one) holds third-party apps deeper down.
        if Path(config.path).resolve().parent != root:
            continue
        package = config.module
        yield package
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            if any(part in SKIPPED_MODULES for part in info.name.split(".")):
                continue
            yield importlib.import_module(info.name)


def form_classes() -> list[type]:
    found: dict[str, type] = {}
    for module in project_modules():
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and obj.__module__ == module.__name__
                and issubclass(obj, (forms.BaseForm, django_filters.FilterSet))
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def populate(org: Organization, label: str, pk_base: int | None = None) -> dict:
    """One of everything a form could offer, named after its tenant."""
    people = {}
    for n, role in enumerate([Role.ADMIN, Role.MARKETER, Role.SALES_REP, Role.SALES_REP]):
        extra = {} if pk_base is None else {"pk": pk_base + n}
        user = f.UserFactory(
            full_name=f"{label} Person {n}", email=f"p{n}@{label.lower()}.example", **extra
        )
        people[role, n] = f.MembershipFactory(organization=org, user=user, role=role, **extra)
    reps = [m for (role, _), m in people.items() if role == Role.SALES_REP]
    team = f.TeamFactory(organization=org, name=f"{label} team", team_lead=reps[0])
    f.TeamMemberFactory(team=team, membership=reps[0])
    campaign = f.CampaignFactory(organization=org, name=f"{label} campaign")
    company = f.CompanyFactory(organization=org, name=f"{label} Ltd")
    capture_form = f.CaptureFormFactory(organization=org, name=f"{label} form")
    f.CaptureFormFieldFactory(form=capture_form, key="email", label=f"{label} email")
    template = f.EmailTemplateFactory(organization=org, name=f"{label} template")
    sequence = f.SequenceFactory(organization=org, name=f"{label} sequence")
    leads = [
        f.LeadFactory(
            organization=org,
            first_name=label,
            company=company,
            owner=reps[0],
            first_campaign=campaign,
        )
        for _ in range(2)
    ]
    return {
        "admin": people[Role.ADMIN, 0],
        "members": list(people.values()),
        "capture_form": capture_form,
        "leads": leads,
        "nurture_list": f.NurtureListFactory(organization=org, name=f"{label} list"),
        "sequence": sequence,
        "template": template,
        "step": f.SequenceStepFactory(sequence=sequence, template=template),
        "routing_rule": f.RoutingRuleFactory(organization=org, name=f"{label} rule"),
        "scoring_rule": f.ScoringRuleFactory(organization=org, name=f"{label} rule"),
        "gating_rule": f.GatingRuleFactory(organization=org),
        "group": f.ScoreGroupFactory(organization=org, name=f"{label} group"),
        "webhook": f.WebhookEndpointFactory(organization=org),
    }


def _request(org, membership):
    request = RequestFactory().get("/")
    request.user = membership.user if membership else AnonymousUser()
    request.organization = org
    request.membership = membership
    request.htmx = False
    return request


def _custom_labels() -> dict[str, str]:
    from leads.attributes import custom_attribute_labels

    return custom_attribute_labels()


def arguments(org, data) -> dict[str, typing.Callable]:
    """Keyword arguments a form may need, by parameter name (built lazily, in scope)."""
    from pipeline.policy import policy_get
    from scoring.selectors import scoring_settings

    return {
        "organization": lambda: org,
        "membership": lambda: data["admin"],
        "request": lambda: _request(org, data["admin"]),
        "members": lambda: list(Membership.objects.filter(organization=org).select_related("user")),
        "a": lambda: data["leads"][0],  # MergeForm: the two leads of the URL
        "b": lambda: data["leads"][1],
        "capture_form": lambda: data["capture_form"],
        "fields": lambda: list(data["capture_form"].fields.all()),
        "header": lambda: ["email", "Owner"],
        "custom_labels": lambda: _custom_labels(),
        "mapping": lambda: {},
        "policy": lambda: policy_get(organization_id=org.pk),
        "nurture_list": lambda: data["nurture_list"],
        "sequence": lambda: data["sequence"],
        "template": lambda: data["template"],
        "step": lambda: data["step"],
        "scoring_settings": lambda: scoring_settings(organization_id=org.pk),
    }


def _instance_for(cls, param, org, data):
    """`instance=`: the model the signature names (or the ModelForm's model)."""
    from scoring.selectors import scoring_settings

    hints = typing.get_type_hints(cls.__init__) if param.annotation is not param.empty else {}
    model = hints.get("instance") or getattr(getattr(cls, "_meta", None), "model", None)
    samples = {
        "ScoringRule": lambda: data["scoring_rule"],
        "GatingRule": lambda: data["gating_rule"],
        "ScoringSettings": lambda: scoring_settings(organization_id=org.pk),
    }
    if model is None or model.__name__ not in samples:
        return None
    return samples[model.__name__]()


def build(cls, org, data):
    """The form (or filter set) as a view of `org` would build it, unbound."""
    known = arguments(org, data)
    kwargs = {}
    signature = inspect.signature(cls.__init__)
    for name, param in signature.parameters.items():
        if param.kind not in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD):
            continue
        if name in ("self", "data", "files", "queryset", "prefix"):
            continue
        required = param.default is param.empty
        if name == "instance":
            instance = _instance_for(cls, param, org, data)
            if instance is None and required:
                pytest.fail(f"{cls.__qualname__}: no sample instance for its `instance=`")
            if instance is not None:
                kwargs[name] = instance
        elif name in known:
            kwargs[name] = known[name]()
        elif required:
            pytest.fail(
                f"{cls.__module__}.{cls.__qualname__} needs `{name}=`: teach "
                "tests/security/test_form_choices.py how a view builds it"
            )
    if issubclass(cls, django_filters.FilterSet):
        model = cls._meta.model
        filterset = cls(None, queryset=model.objects.all(), **kwargs)
        return filterset.form
    return cls(**kwargs)


def _flat(choices):
    for value, label in choices:
        if isinstance(label, list | tuple):  # an optgroup
            yield from _flat(label)
        else:
            yield value, label


def _belongs(obj, org) -> bool:
    if isinstance(obj, Membership):
        return obj.organization_id == org.pk
    if isinstance(obj, User):
        return obj.memberships.filter(organization=org).exists()
    if isinstance(obj, Organization):
        return obj.pk == org.pk
    if hasattr(obj, "organization_id"):
        return obj.organization_id == org.pk
    pytest.fail(f"{type(obj).__name__} offered in a form: is it tenant data? Teach _belongs.")


def offered_foreign(form, org, foreign_ids: set[str]) -> tuple[list[str], int]:
    """Choices of `form` that are not `org`'s; and how many choices were checked."""
    bad, checked = [], 0
    for name, field in form.fields.items():
        if isinstance(field, forms.ModelChoiceField):
            for obj in field.queryset:
                checked += 1
                if not _belongs(obj, org):
                    bad.append(f"{name}: {obj!r}")
        if isinstance(field, forms.ChoiceField):
            for value, label in _flat(field.choices):
                checked += 1
                value = str(getattr(value, "value", value))
                if FOREIGN in str(label) or value in foreign_ids:
                    bad.append(f"{name}: {value!r} {label!r}")
    return bad, checked


@pytest.fixture
def tenants(org, other_org):
    with scopes_disabled():
        mine = populate(org, "Acme")
        theirs = populate(other_org, FOREIGN, pk_base=FOREIGN_PK_BASE)
    foreign_ids = {str(m.pk) for m in theirs["members"]} | {
        str(m.user_id) for m in theirs["members"]
    }
    return mine, foreign_ids


def test_the_walk_finds_the_forms():
    names = {c.__qualname__ for c in form_classes()}
    # Spot checks that discovery reaches every app and every kind of class.
    assert {"NurtureListForm", "LeadFilter", "BulkActionForm", "TeamForm", "OrganizationForm"} <= (
        names
    )
    assert len(names) >= 40


@pytest.mark.django_db
def test_every_form_offers_only_its_own_organizations_choices(org, tenants):
    mine, foreign_ids = tenants
    checked, leaks, member_lists = 0, {}, 0
    own_names = {m.user.display_name for m in mine["members"]}
    for cls in form_classes():
        with tenant_scope(org):
            form = build(cls, org, mine)
            bad, n = offered_foreign(form, org, foreign_ids)
            labels = {str(label) for fld in form.fields.values() for _, label in _choices(fld)}
        checked += n
        member_lists += any(name in label for name in own_names for label in labels)
        if bad:
            leaks[f"{cls.__module__}.{cls.__qualname__}"] = bad
    assert leaks == {}
    # Not vacuous: the forms offered choices, among them lists of this org's people.
    assert checked > 100 and member_lists >= 5


def _choices(field):
    if isinstance(field, forms.ChoiceField):
        return list(_flat(field.choices))
    return []


@pytest.mark.django_db
def test_a_form_the_walk_cannot_build_fails_it(org, tenants):
    class NeedsSomethingNew(forms.Form):
        def __init__(self, *args, gadget, **kwargs):
            super().__init__(*args, **kwargs)

    with tenant_scope(org), pytest.raises(pytest.fail.Exception, match="needs `gadget=`"):
        build(NeedsSomethingNew, org, tenants[0])


@pytest.mark.django_db
def test_the_task_assignee_picker_offers_this_orgs_sellers_only(org, tenants):
    """The walk builds FollowUpForm as an admin sees it (with the assignee picker):
    its people are this organization's active reps and admins, nobody else's."""
    from pipeline.forms import FollowUpForm

    mine, foreign_ids = tenants
    assert FollowUpForm in form_classes()
    with tenant_scope(org):
        form = build(FollowUpForm, org, mine)
        offered = {m.pk for m in form.fields["assignee"].queryset}
        assert offered_foreign(form, org, foreign_ids)[0] == []
    sellers = {m.pk for m in mine["members"] if m.role in (Role.ADMIN, Role.SALES_REP)}
    assert offered == sellers
    assert not foreign_ids & {str(pk) for pk in offered}
    with tenant_scope(org):  # a rep's tasks are their own: no picker at all
        rep = next(m for m in mine["members"] if m.role == Role.SALES_REP)
        assert "assignee" not in FollowUpForm(organization=org, membership=rep).fields
