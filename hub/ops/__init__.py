"""Operations: Prometheus ``metrics``, the admin's ``stats_recorder`` and ``charts``, the
broadcast ``audit`` trail, ``logging_filters`` (no credentials in logs).
"""
