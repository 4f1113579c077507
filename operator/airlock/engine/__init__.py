"""The engine: schedules evaluations, carries out decisions, keeps status honest.

Sits between the Kopf handlers (which only translate events into calls here)
and the adapters (which talk to the API server and Prometheus).  The decisions
themselves are pure and live in ``airlock.domain``.
"""
