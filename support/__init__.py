"""Small generic building blocks with no knowledge of calendars or voice platforms.

Keyed semaphores, leases, HMAC signing, bearer tokens, validation messages, the per-call time
budget, the request's one log line and the metrics catalogue: one of each, used by every layer
above.
"""
