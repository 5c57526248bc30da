"""Ports: what the core needs from the outside world, as interfaces and plain value types.

Nothing here does I/O or knows a vendor. Adapters (`vapi_calendar.providers`,
`vapi_calendar.stores`, the edge) implement these; the domain and the application use them.
"""
