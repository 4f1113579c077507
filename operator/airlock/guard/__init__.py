"""``airlock guard``: the inspecting reverse proxy in front of one AISystem's model (SPEC §9).

It sits beside the layers, not inside them: it uses ``adapters`` (the Kubernetes API),
``domain`` (detectors, OpenAI shapes, the routing decision) and ``api`` (its
configuration), and nothing but the ``cli`` imports it (import-linter contracts).
"""
