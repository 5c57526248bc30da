"""Microsoft 365 on loopback: the identity platform's v2.0 endpoints and a Graph calendar subset.

It follows Microsoft's reference, awkward parts included, so the adapter is tested against what
Graph really does: calendarView pages of 10 by default with `@odata.nextLink`, times answered
in UTC (and in the request's zone after a create or update), ids that change when an item
moves folders unless `Prefer: IdType="ImmutableId"`, extended properties only when `$expand`ed,
`transactionId` de-duplication, `/cancel` for organizers only, 401 `InvalidAuthenticationToken`,
429 `ApplicationThrottled` with Retry-After above 4 concurrent requests per mailbox,
`MailboxNotEnabledForRESTAPI` for an account without a mailbox, and refresh tokens that rotate
on every refresh. Served by the same app (and the same fault, latency and request-count hooks)
as the Google emulator; it imports nothing of the server.
"""
