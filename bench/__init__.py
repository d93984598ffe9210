"""`make bench`: the webhook under load, beside a no-op view served the same way (SPEC §11)."""
