"""Domain errors of the pipeline; views show their message to the user."""

from leadflow.core.errors import LeadflowError


class PipelineError(LeadflowError):
    """Base of every pipeline error."""


class TransitionNotAllowed(PipelineError):
    """The transition table forbids this move (or this actor making it)."""


class ReasonRequired(TransitionNotAllowed):
    """The move is allowed only with a reason."""


class QualificationIncomplete(PipelineError):
    """SQL needs the organization's required BANT parts filled in."""


class QualificationInvalid(PipelineError):
    """A BANT value that cannot be stored (negative budget, unknown timing…)."""


class OpportunityInvalid(PipelineError):
    """An opportunity value that cannot be stored or a closed deal being edited."""


class RepUnavailable(PipelineError):
    """The rep is away, at capacity, inactive or not a seller."""


class NotYourLead(PipelineError):
    """A rep acting on a lead assigned to someone else (views turn it into a 404)."""


class RoutingConfigError(PipelineError):
    """A team, member, routing rule or policy that cannot be saved."""


class LeadInactive(PipelineError):
    """The lead was merged into another or discarded: only the survivor moves."""


class IntegrationMoveRefused(TransitionNotAllowed):
    """The transition table keeps this move from an integration; `from_stage`
    lets the caller say which moves are possible instead."""

    def __init__(self, message: str, *, from_stage: str) -> None:
        super().__init__(message)
        self.from_stage = from_stage
