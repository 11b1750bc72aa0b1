"""Security: users and roles, password hashing, bearer tokens, institution API keys, audit log."""
