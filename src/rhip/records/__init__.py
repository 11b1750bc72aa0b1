"""Shared health record (档案调阅), consent and smart reminders."""
