"""slurm_monitor.clusters: names, channels and storage keys of several clusters."""

from __future__ import annotations

import pytest

from slurm_monitor import clusters


@pytest.mark.parametrize("name", ["a", "hpc", "Cluster-2", "gpu_b", "x" * 40])
def test_valid_names(name):
    assert clusters.validate(name) == name


@pytest.mark.parametrize("name", ["", "-a", "_a", "a.b", "a:b", "a/b", "a b", "x" * 41, "é", None])
def test_invalid_names_are_refused(name):
    with pytest.raises(clusters.ClusterNameError):
        clusters.validate(name)


def test_the_primary_keeps_protocol_channels_and_plain_keys():
    assert [clusters.channel(b, "hpc", "hpc") for b in ("jobs", "nodes", "metrics")] == ["jobs", "nodes", "metrics"]
    assert clusters.column("hpc", "hpc") == ""
    assert clusters.key("", "123") == "123"
    assert clusters.display("", "hpc") == "hpc"


def test_another_cluster_gets_its_own_channels_and_prefixed_keys():
    assert [clusters.channel(b, "gpu", "hpc") for b in ("jobs", "nodes", "metrics")] == \
        ["jobs.gpu", "nodes.gpu", "metrics.gpu"]
    for shared in ("alerts", "notifications", "user:alice"):
        assert clusters.channel(shared, "gpu", "hpc") == shared
    assert clusters.column("gpu", "hpc") == "gpu"
    assert clusters.display("gpu", "hpc") == "gpu"
    assert clusters.key("gpu", "123") == "gpu/123"
    assert clusters.key("gpu", "123") != clusters.key("", "123")


@pytest.mark.parametrize("column, ident", [("", "123"), ("gpu", "123"), ("gpu", "10_1"), ("", "cn01")])
def test_split_key_inverts_key(column, ident):
    assert clusters.split_key(clusters.key(column, ident)) == (column, ident)
