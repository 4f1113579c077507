"""The API: pydantic models of the three kinds, the single source of truth for the CRDs.

Nothing here talks to a cluster; ``airlock.api.crd`` turns these models into
CustomResourceDefinitions.
"""
