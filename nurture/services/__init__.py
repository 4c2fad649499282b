"""Every nurture write (see the modules for the rules each enforces).

Import from here: ``from nurture import services`` then ``services.list_save(...)``.
"""

from nurture.rendering import TemplateInvalid
from nurture.services.common import (
    EnrollmentError,
    ListInvalid,
    NurtureError,
    SequenceInvalid,
    TrackingError,
    org_settings,
    sendable_leads,
)
from nurture.services.dispatch import (
    dispatch_due,
    organizations_with_due_work,
    template_test_send,
)
from nurture.services.enrollments import (
    enroll_for_trigger,
    enrollment_pause,
    enrollment_resume,
    enrollment_start,
    enrollment_stop,
    enrollments_exit,
)
from nurture.services.lists import (
    clean_filter,
    community_list,
    filter_leads,
    list_add_leads,
    list_refresh,
    list_remove_leads,
    list_save,
    refresh_dynamic_lists,
)
from nurture.services.sends import message_resend, message_send, requeue_stale
from nurture.services.sequences import (
    sequence_save,
    step_delete,
    step_move,
    step_save,
    template_delete,
    template_save,
)
from nurture.services.tracking import track_click, track_open, unsubscribe, unsubscribe_target

__all__ = [
    "EnrollmentError",
    "ListInvalid",
    "NurtureError",
    "SequenceInvalid",
    "TemplateInvalid",
    "TrackingError",
    "clean_filter",
    "community_list",
    "dispatch_due",
    "enroll_for_trigger",
    "enrollment_pause",
    "enrollment_resume",
    "enrollment_start",
    "enrollment_stop",
    "enrollments_exit",
    "filter_leads",
    "list_add_leads",
    "list_refresh",
    "list_remove_leads",
    "list_save",
    "message_resend",
    "message_send",
    "org_settings",
    "organizations_with_due_work",
    "refresh_dynamic_lists",
    "requeue_stale",
    "sendable_leads",
    "sequence_save",
    "step_delete",
    "step_move",
    "step_save",
    "template_delete",
    "template_save",
    "template_test_send",
    "track_click",
    "track_open",
    "unsubscribe",
    "unsubscribe_target",
]
