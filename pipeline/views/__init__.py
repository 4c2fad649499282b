"""Pipeline pages: the rep queue and its quick actions, the team view, the
opportunity board and the routing/SLA settings. Views parse, call a service
(pipeline.services) or a selector (pipeline.selectors), and render."""
