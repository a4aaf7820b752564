"""Jobs on the REAL one-node Slurm for the browser tests: submitted under a test's name
prefix (the cluster is shared with other tests), and that test's jobs cancelled at the end."""

from __future__ import annotations

import subprocess


def slurm(*args: str) -> str:
    """Run a Slurm command; its output, stripped. A failing command fails the test."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


class TestJobs:
    """``sbatch`` and ``cancel_ours`` for the jobs whose names start with ``prefix``."""

    __test__ = False  # not a pytest class

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def sbatch(self, name: str, script: str, *extra: str) -> str:
        """Submit ``script`` as ``<prefix>-<name>`` (output dropped, in /tmp); the job id."""
        return slurm("sbatch", "--parsable", "-J", f"{self.prefix}-{name}", "-o", "/dev/null", "--chdir", "/tmp",
                     *extra, "--wrap", script).split(";")[0]

    def cancel_ours(self) -> None:
        """Cancel every job (or array) of root's whose name starts with the prefix."""
        for line in slurm("squeue", "-h", "-u", "root", "-o", "%i %j").splitlines():
            number, _, name = line.partition(" ")
            if name.startswith(self.prefix):
                subprocess.run(["scancel", number.split("_")[0]], capture_output=True, timeout=30)
