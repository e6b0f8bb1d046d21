"""The service layer: use cases over ports (:mod:`services.ports`), one function each.

A handler takes the ports it needs (a unit of work, a clock's time, an event sink) and
nothing of HTTP; routers call it and turn its errors into answers. It imports only the
domain, the ports and the topic names, so every package may call it.
"""
