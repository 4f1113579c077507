"""Annotation keys (SPEC §3, binding): the control surface for humans and GitOps."""

PREFIX = "airlock.dev/"

# On an AISystem.
SHUTDOWN = "airlock.dev/shutdown"
RELEASE = "airlock.dev/release"
DRILL = "airlock.dev/drill"
REQUESTED_BY = "airlock.dev/requested-by"
# Groups of whoever set the control annotation, comma-separated (stamped with REQUESTED_BY).
REQUESTED_BY_GROUPS = "airlock.dev/requested-by-groups"

# On an AIIncident.
ACKNOWLEDGE = "airlock.dev/acknowledge"
APPROVE = "airlock.dev/approve"
POSTMORTEM = "airlock.dev/postmortem"
# Art. 3(49) harm categories found by a responder: "b", "a,c", "c,widespread" (verb report).
HARM = "airlock.dev/harm"
# Regulatory submissions: "gdpr-art33=DPA-2026-1142; eu-ai-act-art73=REF" (verb report).
REPORT_SUBMITTED = "airlock.dev/report-submitted"

# On targets, written by airlock.
CONTAINED_BY = "airlock.dev/contained-by"
SAVED_STATE = "airlock.dev/saved-state"

# Labels/annotations on what airlock creates for an incident (notice drafts, post-mortem).
INCIDENT_LABEL = "airlock.dev/incident"

# Labels airlock puts on what it creates.
SYSTEM_LABEL = "airlock.dev/system"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

SYSTEM_CONTROL = (SHUTDOWN, RELEASE, DRILL)
INCIDENT_CONTROL = (ACKNOWLEDGE, APPROVE, POSTMORTEM, HARM, REPORT_SUBMITTED)
# Who set a control annotation: written at admission, never trusted from a client.
IDENTITY = (REQUESTED_BY, REQUESTED_BY_GROUPS)
