"""`actor` in a service signature is one thing everywhere: the acting
Membership (it carries the user, the organization and the role), annotated as
such. Walks every service module; the modules not converted yet are listed
and must shrink, never grow."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import django.apps

ACCEPTED = {"Membership", "Membership | None"}

# Still take a User (or anything) as `actor`; convert, then delete the entry.
NOT_YET_MEMBERSHIP: set[str] = set()


def service_modules() -> list[str]:
    names = []
    for config in django.apps.apps.get_app_configs():
        for part in ("services", "versions"):
            try:
                module = importlib.import_module(f"{config.name}.{part}")
            except ModuleNotFoundError:
                continue
            names.append(module.__name__)
            if hasattr(module, "__path__"):
                names += [
                    info.name
                    for info in pkgutil.iter_modules(module.__path__, f"{module.__name__}.")
                ]
    return names


def actor_annotations(module_name: str) -> dict[str, str]:
    module = importlib.import_module(module_name)
    found = {}
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if function.__module__ != module_name:
            continue
        parameter = inspect.signature(function).parameters.get("actor")
        if parameter is not None:
            annotation = parameter.annotation
            found[name] = annotation if isinstance(annotation, str) else repr(annotation)
    return found


def test_every_service_actor_is_a_membership():
    modules = service_modules()
    assert "pipeline.services.sales" in modules and "leads.services.leads" in modules
    wrong = {
        f"{module}.{function}": annotation
        for module in modules
        if module not in NOT_YET_MEMBERSHIP
        for function, annotation in actor_annotations(module).items()
        if annotation not in ACCEPTED
    }
    assert not wrong, f"annotate actor as Membership: {wrong}"


def test_the_not_yet_converted_list_only_names_modules_that_still_differ():
    converted = [
        module
        for module in sorted(NOT_YET_MEMBERSHIP)
        if all(a in ACCEPTED for a in actor_annotations(module).values())
    ]
    assert not converted, f"remove from NOT_YET_MEMBERSHIP: {converted}"
