"""Kopf handlers: the only place with ``@kopf.*`` decorators.

They translate Kopf events into engine calls and nothing else.
"""
