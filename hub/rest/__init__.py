"""The HTTP side: REST views (``apis``, ``apis_rules``, ``tokens``), their input and output
(``parsers``, ``serializers``, ``apis_errors``), who may call what (``permissions``,
``rest_auth``, ``login_throttle``), ``POST /api/broadcast`` (``broadcasting``, the lean
``broadcast_route``) and the read side (``selectors``).
"""
