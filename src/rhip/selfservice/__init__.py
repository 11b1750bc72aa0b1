"""Self-service terminals (自助终端) and medical cards."""
