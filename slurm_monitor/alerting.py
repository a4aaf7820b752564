"""Alerts as data: the monitor evaluates the AlertRule rows (never per viewer) and stores each
alert's lifecycle; people acknowledge and silence them (admin). Sync ORM: the monitor calls
``evaluate_and_record`` through its ``_db`` wrapper after each nodes poll.

Every state lives in the database (pending-since included), so a restarted monitor or a
cron-driven ``--once`` run carries on where the previous one stopped: nothing is raised twice.
What goes on the ``alerts`` channel keeps PROTOCOL's ``alert``/``alert_resolved`` payloads
(``alert_id`` is the rule's name, ``name:target`` for a partition or node). A silenced alert is
recorded but not pushed when raised, nor its resolution (nobody was told it began). The active
raised alerts are also saved as the ``alerts`` stream (GET /api/cluster/alerts, /metrics).

Several clusters: each monitor evaluates and stores only its own cluster's alerts (``Alert.cluster``,
the column value); ``alert_id`` is ``clusters.key(cluster, rule[:target])``, so the primary's
ids are unchanged and cluster b's (``b/nodes_down``) never collide with them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Mapping

from django.db import transaction

from slurm_monitor import clusters, store
from slurm_monitor.alerts import AlertState, RuleSpec, Transition, alert_key, evaluate_rules
from slurm_monitor.events import ALERTS, Publication, build_alert, build_alert_resolved, iso
from slurm_monitor.models import Alert, AlertAudit, AlertRule
from slurm_monitor.snapshot import Job, Node

MONITOR = "monitor"

# The shipped rules, created when the AlertRule table is empty (a new site, or every rule
# deleted: disable rules rather than delete them all). Each makes sense on any cluster size: a
# percentage AND a minimum absolute count.
DEFAULT_RULES: list[dict] = [
    # Slurm itself waits SlurmdTimeout (300 s by default) before it marks a node DOWN, so no
    # extra duration: 2 % of the nodes, at least one (a 5-node cluster: 1 node; 10,000: 201).
    dict(name="nodes_down", metric="nodes_down_percent", scope="cluster", threshold=2.0, clear_at=None,
         min_count=1, duration_seconds=0, severity="critical",
         description="More than 2 % of the nodes are down"),
    # Drains are often planned (maintenance): only a quarter of the cluster out for 10 minutes.
    dict(name="nodes_unavailable", metric="nodes_unavailable_percent", scope="cluster", threshold=25.0,
         clear_at=20.0, min_count=2, duration_seconds=600, severity="warning",
         description="More than 25 % of the nodes are down or drained for 10 minutes"),
    # A full cluster is a busy one, not an incident: informational, and only on a cluster of some
    # size, full for half an hour (a 2-CPU cluster at 100 % raises nothing).
    dict(name="cluster_cpu_full", metric="cpu_alloc_percent", scope="cluster", threshold=95.0, clear_at=90.0,
         min_count=64, duration_seconds=1800, severity="info",
         description="More than 95 % of the CPUs allocated for 30 minutes (64 CPUs at least)"),
    dict(name="cluster_gpu_full", metric="gpu_alloc_percent", scope="cluster", threshold=95.0, clear_at=90.0,
         min_count=8, duration_seconds=1800, severity="info",
         description="More than 95 % of the GPUs allocated for 30 minutes (8 GPUs at least)"),
    dict(name="cluster_memory_full", metric="memory_alloc_percent", scope="cluster", threshold=95.0,
         clear_at=90.0, min_count=65536, duration_seconds=1800, severity="info",
         description="More than 95 % of the memory allocated for 30 minutes (64 GiB at least)"),
    dict(name="partition_nodes_down", metric="nodes_down_percent", scope="partition", threshold=20.0,
         clear_at=None, min_count=2, duration_seconds=0, severity="warning",
         description="More than 20 % of a partition's nodes are down (2 at least)"),
]


def ensure_default_rules() -> None:
    if not AlertRule.objects.exists():
        for rule in DEFAULT_RULES:
            AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def rule_spec(rule: AlertRule) -> RuleSpec:
    return RuleSpec(rule.name, rule.metric, rule.scope, rule.target, rule.threshold, rule.clear_at,
                    rule.min_count, float(rule.duration_seconds), rule.severity)


def _state(alert: Alert) -> AlertState:
    return AlertState(alert.rule_name, alert.target, alert.pending_since.timestamp(),
                      alert.raised_at.timestamp() if alert.raised_at else None)


def _silenced(alert: Alert, now: float) -> bool:
    return alert.silenced_until is not None and alert.silenced_until.timestamp() > now


def _apply(t: Transition, open_alerts: dict, rules: Mapping[str, AlertRule], now: float,
           cluster: str = clusters.PRIMARY) -> Publication | None:
    alert = open_alerts.get((t.rule, t.target))
    rule = rules.get(t.rule)
    if t.kind in ("pending", "raise") and alert is None:
        alert = Alert.objects.create(
            rule=rule, rule_name=t.rule, target=t.target, cluster=cluster,
            alert_id=clusters.key(cluster, alert_key(t.rule, t.target)),
            severity=rule.severity if rule else "warning", threshold=rule.threshold if rule else 0.0,
            value=t.value, message=t.message[:500], pending_since=_utc(now))
    if alert is None:
        return None
    if t.kind == "drop":
        alert.delete()  # fired briefly, never raised: not an alert anyone needs to see
        return None
    alert.value, alert.message = t.value, t.message[:500]
    if t.kind == "pending":
        alert.save()
        return None
    if t.kind == "raise":
        alert.raised_at = _utc(now)
        alert.save()
        AlertAudit.objects.create(alert=alert, action="raised", actor=MONITOR, detail=t.message[:500])
        if _silenced(alert, now):
            return None
        return build_alert(alert.alert_id, alert.severity, t.message, t.value, alert.threshold, now)
    alert.resolved_at = _utc(now)
    alert.save()
    AlertAudit.objects.create(alert=alert, action="resolved", actor=MONITOR, detail=t.message[:500])
    if _silenced(alert, now):
        return None
    return build_alert_resolved(alert.alert_id, t.message, t.value, alert.threshold,
                                alert.raised_at.timestamp() if alert.raised_at else now, now)


def active_payloads(cluster: str = clusters.PRIMARY) -> list[dict]:
    """The raised, unresolved alerts of ``cluster`` as ``alert`` payloads (its ``alerts`` stream)."""
    rows = Alert.objects.filter(cluster=cluster, raised_at__isnull=False,
                                resolved_at__isnull=True).order_by("raised_at", "id")
    return [{"alert_id": a.alert_id, "severity": a.severity, "message": a.message, "value": a.value,
             "threshold": a.threshold, "raised_at": iso(a.raised_at.timestamp() if a.raised_at else None),
             "acknowledged_by": a.acknowledged_by or None,
             "silenced_until": iso(a.silenced_until.timestamp()) if a.silenced_until else None}
            for a in rows]


def evaluate_and_record(jobs: Mapping[str, Job], nodes: Mapping[str, Node], now: float,
                        source: str = "", cluster: str = clusters.PRIMARY,
                        pending: Mapping[str, int] | None = None) -> list[Publication]:
    """One evaluation of every enabled rule for ``cluster`` (its column value): store the
    transitions, return what to publish. Another cluster's alerts are never touched.
    ``pending``: pending jobs per partition if the caller has them (``alerts.evaluate_rules``)."""
    from slurm_monitor.models import ClusterStream

    with transaction.atomic():
        ensure_default_rules()
        rules = {r.name: r for r in AlertRule.objects.filter(enabled=True)}
        open_alerts = {(a.rule_name, a.target): a for a in
                       Alert.objects.select_for_update().filter(cluster=cluster, resolved_at__isnull=True)}
        states = {key: _state(alert) for key, alert in open_alerts.items()}
        transitions = evaluate_rules([rule_spec(r) for r in rules.values()], jobs, nodes, states, now, pending)
        publications = [p for t in transitions if (p := _apply(t, open_alerts, rules, now, cluster)) is not None]
        if transitions or not ClusterStream.objects.filter(name=clusters.stream_key(cluster, "alerts")).exists():
            store.save_alerts(active_payloads(cluster), source, cluster=cluster)
    return publications


# --- people ----------------------------------------------------------------------------------


def acknowledge(alert: Alert, username: str) -> bool:
    """Mark a raised, unresolved alert acknowledged by ``username`` (audited); False if it is
    not one (pending, resolved or already acknowledged)."""
    if alert.raised_at is None or alert.resolved_at is not None or alert.acknowledged_at is not None:
        return False
    alert.acknowledged_by, alert.acknowledged_at = username[:150], datetime.now(tz=timezone.utc)
    alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
    AlertAudit.objects.create(alert=alert, action="acknowledged", actor=username[:150])
    store.save_alerts(active_payloads(alert.cluster), "admin", cluster=alert.cluster)
    return True


def silence(alert: Alert, username: str, seconds: float) -> bool:
    """Silence an unresolved alert for ``seconds`` (0: lift the silence), audited."""
    if alert.resolved_at is not None:
        return False
    until = datetime.now(tz=timezone.utc) + timedelta(seconds=seconds) if seconds > 0 else None
    alert.silenced_until = until
    alert.save(update_fields=["silenced_until"])
    AlertAudit.objects.create(alert=alert, action="silenced" if until else "unsilenced", actor=username[:150],
                              detail=f"until {iso(until.timestamp())}" if until else "")
    store.save_alerts(active_payloads(alert.cluster), "admin", cluster=alert.cluster)
    return True


# --- acknowledged: the one function for every road (admin action, REST) ------------------------

ACKNOWLEDGED_EVENT = "alert_acknowledged"  # a hub extension on ``alerts`` (PROTOCOL §4 lists alert, alert_resolved)


def acknowledged_payload(alert: Alert) -> dict:
    """What ``alert_acknowledged`` carries and the REST endpoint answers."""
    at = alert.acknowledged_at.timestamp() if alert.acknowledged_at else None
    return {"alert_id": alert.alert_id, "acknowledged_by": alert.acknowledged_by or None,
            "acknowledged_at": iso(at), "status": alert.status}


def _push(event: str, data: dict) -> bool:
    """Publish on ``alerts``, bounded (a hub that does not answer must not hang an admin page);
    False (logged) if it failed: the acknowledgement itself is stored either way."""
    import logging

    from hub.publish import HubUnavailable, PublishError, publish_sync

    try:
        publish_sync(ALERTS, event, data)  # bounded by hub.publish.DEADLINE_SECONDS
    except (HubUnavailable, PublishError) as exc:
        logging.getLogger(__name__).warning("%s %s not pushed: %s", event, data.get("alert_id"), exc)
        return False
    return True


def acknowledge_and_push(alert: Alert, username: str) -> bool:
    """``acknowledge`` then, once the row is committed, publish ``alert_acknowledged``
    ``{alert_id, acknowledged_by, acknowledged_at}`` on ``alerts`` so every staff page shows
    it. False (nothing stored, nothing pushed) when ``acknowledge`` refuses: idempotent."""
    if not acknowledge(alert, username):
        return False
    payload = acknowledged_payload(alert)
    payload.pop("status")
    transaction.on_commit(lambda: _push(ACKNOWLEDGED_EVENT, payload))
    return True
