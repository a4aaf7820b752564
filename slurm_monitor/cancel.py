"""Cancelling a job for its owner (or staff): ``POST /api/cluster/jobs/<job_id>/cancel``.

Off unless the site names the command: ``SLURM_MONITOR_CANCEL_COMMAND``, a command line with
``{job_id}`` and optionally ``{user}`` (the job's Slurm user) and ``{cluster}`` (the job's
cluster name, ``slurm_monitor.clusters``), e.g.

    sudo -n -u {user} scancel {job_id}     # sudoers lets the hub's account run scancel as users
    scancel {job_id}                        # the hub's account is a Slurm operator
    scancel -M {cluster} {job_id}           # several clusters (slurmdbd federation, -M)

Without ``{cluster}`` the command can only cancel on the primary cluster: a job of another
cluster is refused (``needs_cluster``) rather than the same id cancelled on the wrong one.

(docs/deployment.md says how to set up either, and the slurmrestd alternative.) The line is
split ONCE, at start-up, with ``shlex`` into an argv template; the placeholders are then
replaced inside single arguments, and the command runs without a shell, so a value can never
become another argument or a shell construct. Values are validated before that anyway: the job
id matches ``JOB_REF`` (digits, or ``10_1``), the user ``USER_NAME``.

``cancel(job, actor)`` runs the command (bounded by ``SLURM_MONITOR_CANCEL_TIMEOUT`` seconds)
and writes a ``JobActionAudit`` row whatever happens; the view decides who may ask. The
result is not the job's new state: that arrives on the stream, as ``job_state_changed`` to
``CANCELLED``, when the monitor next sees it.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
from dataclasses import dataclass

logger = logging.getLogger(__name__)

JOB_REF = re.compile(r"[0-9]{1,10}(_[0-9]{1,10})?")
USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
PLACEHOLDERS = ("{job_id}", "{user}", "{cluster}")
DEFAULT_TIMEOUT = 20.0


class CancelConfigError(ValueError):
    """SLURM_MONITOR_CANCEL_COMMAND cannot be used; the message says why."""


def parse_command(line: str | None) -> tuple[str, ...] | None:
    """The setting's text -> an argv template, or None (off) when unset or blank. Raises
    CancelConfigError when it does not parse, lacks ``{job_id}``, or has another ``{...}``."""
    if line is None or not line.strip():
        return None
    try:
        argv = tuple(shlex.split(line))
    except ValueError as exc:
        raise CancelConfigError(f"SLURM_MONITOR_CANCEL_COMMAND does not parse: {exc}") from None
    if not any("{job_id}" in arg for arg in argv):
        raise CancelConfigError("SLURM_MONITOR_CANCEL_COMMAND must contain {job_id}")
    for arg in argv:
        rest = arg
        for placeholder in PLACEHOLDERS:
            rest = rest.replace(placeholder, "")
        if "{" in rest or "}" in rest:
            raise CancelConfigError(f"SLURM_MONITOR_CANCEL_COMMAND: unknown placeholder in {arg!r} "
                                    "(only {job_id}, {user} and {cluster})")
    return argv


def names_cluster(template: tuple[str, ...]) -> bool:
    """Whether the command says which cluster (``{cluster}``): needed to cancel off the primary."""
    return any("{cluster}" in arg for arg in template)


def build_argv(template: tuple[str, ...], job_id: str, user: str, cluster: str = "") -> list[str]:
    """The argv for one job of the cluster named ``cluster`` (its display name). Raises
    ValueError for a job id, user or cluster name that is not one."""
    from slurm_monitor.clusters import validate

    if not JOB_REF.fullmatch(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    if not USER_NAME.fullmatch(user):
        raise ValueError(f"not a Slurm user name: {user!r}")
    if names_cluster(template):
        validate(cluster)
    return [arg.replace("{job_id}", job_id).replace("{user}", user).replace("{cluster}", cluster)
            for arg in template]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str  # the command's first line of complaint, or "" when it succeeded


def configured() -> tuple[str, ...] | None:
    """The cancel command as an argument template, or None (off). The setting is the raw line
    (or, set by code, an already parsed tuple); ``SlurmMonitorConfig.ready`` refused a bad one."""
    from django.conf import settings

    value = getattr(settings, "SLURM_MONITOR_CANCEL_COMMAND", None)
    return parse_command(value) if isinstance(value, str) else value


def run(argv: list[str], timeout: float) -> Outcome:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return Outcome(False, f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Outcome(False, f"{argv[0]} did not answer within {timeout:g} s")
    except OSError as exc:
        return Outcome(False, f"{argv[0]}: {exc.strerror or exc}")
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        return Outcome(False, (lines[0] if lines else f"exit status {done.returncode}")[:500])
    return Outcome(True, "")


def audit(actor: str, job_id: str, job_user: str, result: str, detail: str = "", cluster: str = "") -> None:
    """One ``JobActionAudit`` row; ``cluster``: the job's cluster column ("" the primary)."""
    from slurm_monitor.models import JobActionAudit

    JobActionAudit.objects.create(actor=actor[:150], job_id=job_id[:32], job_user=job_user[:150],
                                  action="cancel", result=result[:32], detail=detail[:500], cluster=cluster[:40])


def cancel(template: tuple[str, ...], job_id: str, job_user: str, actor: str,
           cluster_name: str = "", cluster_column: str = "") -> Outcome:
    """Run the configured command for one job, audited (result ``ok`` or ``failed``);
    ``cluster_name`` fills ``{cluster}``, ``cluster_column`` goes to the audit row."""
    from django.conf import settings

    timeout = float(getattr(settings, "SLURM_MONITOR_CANCEL_TIMEOUT", DEFAULT_TIMEOUT))
    outcome = run(build_argv(template, job_id, job_user, cluster_name), timeout)
    audit(actor, job_id, job_user, "ok" if outcome.ok else "failed", outcome.detail, cluster_column)
    if not outcome.ok:
        logger.warning("cancel of job %s by %s failed: %s", job_id, actor, outcome.detail)
    return outcome
