"""PURE: Slurm's job reason codes in words, with what the job's owner can do about each.

``explain(reason) -> Explained(text, hint)``: ``text`` says what the code means, ``hint`` what
the user can do (None when there is nothing useful to say). An unknown code falls back to the
raw text (``hint`` None); no reason (None, "", "None") gives (None, None). A reason with a
detail after the code, as Slurm prints ``ReqNodeNotAvail, UnavailableNodes:node[1-2]``, is
explained by its code and keeps the detail in ``text``.

Sources (SchedMD's tree): the squeue man page, section "JOB REASON CODES";
``doc/html/job_reason_codes.shtml`` (every code, one line each); the strings themselves from
``job_state_reason_string()`` (src/common/slurm_protocol_defs.c up to 23.11, then
src/common/job_state_reason.c). The families (``AssocGrp*``, ``QOSMax*``, ``Max*PerAccount``
...) name one kind of limit for each trackable resource; they share one explanation that names
the resource the code names.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Explained(NamedTuple):
    text: str | None
    hint: str | None


_WAIT = "Nothing to do: it starts by itself when this clears."
_LIMIT_HINT = ("It starts once your running jobs free enough of this limit; to start sooner, ask for "
               "less (fewer CPUs, nodes, memory or a shorter time) or use another account or QOS.")
_TOO_BIG_HINT = ("As submitted it can never start: cancel it and resubmit within the limit "
                 "(`sacctmgr show qos` / `sacctmgr show assoc` list them), or ask your administrators.")
_ADMIN = "Ask your cluster's administrators."

# code -> (what it means, what the user can do)
CODES: dict[str, tuple[str, str | None]] = {
    "Priority": ("Waiting for jobs with a higher priority in this partition (or reservation) to start first.",
                 _WAIT + " A smaller or shorter request may be backfilled sooner."),
    "Resources": ("Waiting for resources: the CPUs, memory, GPUs or nodes it asked for are in use by other jobs.",
                  _WAIT + " A smaller or shorter request may start sooner."),
    "Dependency": ("Waiting for a job it depends on to finish (see Dependency).",
                   "It starts once the dependency is satisfied."),
    "DependencyNeverSatisfied": ("It depends on a job that ended in a way that can never satisfy the dependency.",
                                 "It will never start: cancel it, and resubmit with a dependency that can be met."),
    "JobHeldUser": ("Held by its owner (submitted with --hold, or `scontrol hold`).",
                    "Release it with `scontrol release <job id>` when it should run."),
    "JobHeldAdmin": ("Held by an administrator.", _ADMIN),
    "JobHoldMaxRequeue": ("Held: it was requeued too many times (MAX_BATCH_REQUEUE).",
                          "Find out why it keeps failing to start (see its output), then release or resubmit it."),
    "BeginTime": ("Waiting for the start time it was given (--begin).", _WAIT),
    "Prolog": ("Its prolog is still running on the allocated nodes.", _WAIT),
    "Cleaning": ("Being requeued; still cleaning up after its previous run.", _WAIT),
    "Licenses": ("Waiting for a license it asked for (-L).", _WAIT),
    "Reservation": ("Waiting for its advanced reservation to become available.", _WAIT),
    "ReservationDeleted": ("The reservation it asked for was deleted.",
                           "Cancel it and resubmit without --reservation (or with another)."),
    "ReservationInvalid": ("The reservation it asked for is not valid for it.",
                           "Cancel it and resubmit without --reservation (or with another)."),
    "ReqNodeNotAvail": ("A node it requires is not available: in use, reserved, down, drained or not responding.",
                        "If it names UnavailableNodes, those need an administrator; otherwise it waits. "
                        "Asking for specific nodes (-w) makes this more likely."),
    "NodeDown": ("A node it requires is down.", _ADMIN),
    "PartitionDown": ("Its partition is down.", _WAIT + " " + _ADMIN),
    "PartitionInactive": ("Its partition is inactive and starts no jobs.", _ADMIN),
    "PartitionNodeLimit": ("It asks for more (or fewer) nodes than its partition allows now, or the nodes "
                           "it needs are down or drained.",
                           "Resubmit with a node count the partition allows (`sinfo`), or to another partition."),
    "PartitionTimeLimit": ("Its time limit is longer than its partition allows.",
                           "Cancel it and resubmit with a shorter --time, or to a partition with a longer limit."),
    "PartitionConfig": ("It breaks a limit of its partition.",
                        "Check the partition's limits (`scontrol show partition`)."),
    "AccountNotAllowed": ("Its account may not use this partition.", "Resubmit with another account or partition."),
    "QOSNotAllowed": ("Its QOS may not use this partition.", "Resubmit with another QOS or partition."),
    "InvalidAccount": ("Its account is not valid.",
                       "Resubmit with an account you belong to (`sacctmgr show assoc user=$USER`)."),
    "InvalidQOS": ("Its QOS is not valid.", "Resubmit with a QOS your account may use."),
    "BadConstraints": ("Its requirements can never be satisfied on this cluster.",
                       "Cancel it and resubmit with requirements the cluster has (--constraint, --gres, memory)."),
    "Constraints": ("Its constraints cannot be satisfied at the moment.", _WAIT),
    "AssociationJobLimit": ("Your association (user and account) has reached its maximum number of jobs.",
                            _LIMIT_HINT),
    "AssociationResourceLimit": ("Your association has reached a resource limit.", _LIMIT_HINT),
    "AssociationTimeLimit": ("Your association has reached its time limit.", _LIMIT_HINT),
    "AssocMaxJobsLimit": ("You already run as many jobs as your association allows at once.", _LIMIT_HINT),
    "AssocMaxSubmitJobLimit": ("You have as many running or pending jobs as your association allows.", _LIMIT_HINT),
    "QOSJobLimit": ("Its QOS has reached its maximum number of jobs.", _LIMIT_HINT),
    "QOSResourceLimit": ("Its QOS has reached a resource limit.", _LIMIT_HINT),
    "QOSTimeLimit": ("Its QOS has reached its time limit.", _LIMIT_HINT),
    "QOSUsageThreshold": ("Its QOS's usage threshold has been breached.", _LIMIT_HINT),
    "AccountingPolicy": ("It breaks an accounting limit.", _LIMIT_HINT),
    "JobArrayTaskLimit": ("Its array already runs as many tasks at once as it allows (the %N in --array).",
                          "Nothing to do: the next task starts when one ends (`scontrol update job=<id> "
                          "ArrayTaskThrottle=<n>` changes the limit)."),
    "BurstBufferResources": ("Not enough space in the burst buffer pool.", _WAIT),
    "BurstBufferStageIn": ("Its burst buffer data is being staged in.", _WAIT),
    "BurstBufferOperation": ("A burst buffer operation for it failed.", _ADMIN),
    "DeadLine": ("It cannot finish before its deadline (--deadline).",
                 "Resubmit with a later deadline or a shorter --time."),
    "FedJobLock": ("Waiting for the federation's clusters to agree on where it runs.", _WAIT),
    "MaxMemPerLimit": ("It asks for more memory per CPU or per node than allowed.",
                       "Cancel it and resubmit with less --mem or --mem-per-cpu."),
    "MaxPoweredUpNodes": ("Waiting for nodes to power up within the cluster's limit.", _WAIT),
    "MpiPortsBusy": ("Waiting for MPI ports to be free.", _WAIT),
    "SchedDefer": ("The scheduler deferred it (SchedulerParameters=defer).", _WAIT),
    "WaitingForScheduling": ("Not considered by the scheduler yet.", _WAIT),
    "NvidiaImexChannels": ("Waiting for an NVIDIA IMEX channel.", _WAIT),
    # why a job ended (shown on finished jobs)
    "NonZeroExitCode": ("It exited with a non-zero exit code.", "See its output and error files."),
    "RaisedSignal": ("It was ended by a signal.", "See its output and error files."),
    "TimeLimit": ("It reached its time limit.", "Resubmit with a longer --time, or make it save and resume its work."),
    "InactiveLimit": ("It reached the cluster's InactiveLimit (its srun or salloc went away).", None),
    "JobLaunchFailure": ("It could not be launched (a file system problem, a program that does not exist...).",
                         "Check the script's paths and the working directory."),
    "SystemFailure": ("A failure of Slurm, a file system or the network.", _ADMIN),
    "OutOfMemory": ("It ran out of memory.", "Resubmit with more --mem (see its peak memory)."),
}

# Resource words in the family codes ("AssocGrpMemLimit": "memory").
_RESOURCES = (("CPURunMinutes", "CPU-minutes of running jobs"), ("CPUMinutes", "CPU-minutes"),
              ("CpuMinutes", "CPU-minutes"), ("Cpu", "CPUs"), ("CPU", "CPUs"), ("Memory", "memory"),
              ("Mem", "memory"), ("Node", "nodes"), ("Jobs", "jobs"), ("SubmitJob", "submitted jobs"),
              ("Wall", "wall time"), ("GRES", "generic resources (GPUs...)"), ("License", "licenses"),
              ("Billing", "billing units"), ("Energy", "energy"), ("BB", "burst buffer"),
              ("Unknown", "an unknown resource"))

_FAMILIES = (
    (re.compile(r"^AssocGrp(\w+)$"), "Your association (account) has reached its total {what} limit.", _LIMIT_HINT),
    (re.compile(r"^QOSGrp(\w+)$"), "Its QOS has reached its total {what} limit.", _LIMIT_HINT),
    (re.compile(r"^AssocMax(\w+)$"), "It asks for more {what} than your association allows per job, node or user.",
     _TOO_BIG_HINT),
    (re.compile(r"^QOSMax(\w+)$"), "It asks for more {what} than its QOS allows per job, node or user.", _TOO_BIG_HINT),
    (re.compile(r"^QOSMin(\w+)$"), "It asks for less {what} than its QOS requires.",
     "Cancel it and resubmit asking for at least the QOS's minimum."),
    (re.compile(r"^Max(\w+?)RunMinsPer(Account|User)$"),
     "{who} running jobs have reached the QOS's limit on {what} times minutes.", _LIMIT_HINT),
    (re.compile(r"^Max(\w+?)PerAccount$"), "Your account's jobs have reached its QOS's {what} limit per account.",
     _LIMIT_HINT),
)

# Descriptions Slurm prints in place of a code (the scheduler's ``state_desc``), read as one.
PHRASES: dict[str, tuple[str, str | None]] = {
    "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions": (
        "Nodes it needs are down, drained, or reserved for jobs in partitions of higher priority.",
        _WAIT + " If the nodes are down or drained, an administrator has to bring them back."),
}

_CODE = re.compile(r"^\s*([A-Za-z][A-Za-z_*]*)\s*(?:([,(:])\s*(.*))?$")


def _resource(name: str) -> str:
    for key, words in _RESOURCES:
        if name.startswith(key):
            return words
    return "of some resource"


def _family(code: str) -> tuple[str, str | None] | None:
    for pattern, text, hint in _FAMILIES:
        match = pattern.match(code)
        if match:
            who = "Your account's" if len(match.groups()) > 1 and match.group(2) == "Account" else "Your"
            return text.format(what=_resource(match.group(1)), who=who), hint
    return None


def explain(reason: str | None) -> Explained:
    """What Slurm's reason code means and what the user can do (module docstring)."""
    if reason is None or not str(reason).strip() or str(reason).strip() == "None":
        return Explained(None, None)
    raw = str(reason).strip()
    if raw in PHRASES:
        return Explained(*PHRASES[raw])
    match = _CODE.match(raw)
    if not match:
        return Explained(raw, None)
    code, detail = match.group(1), (match.group(3) or "").strip()
    if match.group(2) == "(":
        detail = detail.removesuffix(")")
    known = CODES.get(code) or _family(code)
    if known is None:
        return Explained(raw, None)
    text, hint = known
    return Explained(f"{text} ({detail})" if detail else text, hint)


def reason_fields(reason: str | None) -> dict[str, str | None]:
    """``{"reason_text", "reason_hint"}`` for a job record (REST rows, detail, job events)."""
    text, hint = explain(reason)
    return {"reason_text": text, "reason_hint": hint}
