"""Nurture pages (MANAGE_NURTURE): lists, templates, sequences, the outbox."""
