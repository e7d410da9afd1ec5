"""Business rules and SQL, one module per domain; routes call these, and so do tests."""
