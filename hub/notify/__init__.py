"""Notifications: ``notifications`` (persist, push live, list, mark read),
``notification_rules`` (who is told what, where) and ``deliveries`` (e-mail and webhooks).
"""
