"""Emails to the person at the statuses they care about: an outbox written with the change, sent by a job."""
