"""The local Kafka's layout and configuration, the trace viewer's links and the `rcm stack`
command's arguments: what is decided before any process starts."""

from __future__ import annotations

import argparse
import json

import pytest

from rcm.cli.main import UserError
from rcm.cli.stack_cmds import add_parsers, cmd_stack
from rcm.localstack.kafka import KafkaCluster
from rcm.localstack.procs import StackError
from rcm.localstack.zipkin import Zipkin, trace_link
from shared.topics import replication


def _props(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


@pytest.mark.parametrize(
    ("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))]
)
def test_replication_is_three_copies_two_in_sync_when_the_cluster_has_them(brokers, expected):
    assert replication(brokers) == expected


def test_three_brokers_are_three_voters_each_with_its_own_ports_and_data(tmp_path):
    cluster = KafkaCluster(tmp_path, tmp_path / "home", brokers=3)
    assert [n.node_id for n in cluster.nodes] == [1, 2, 3]
    ports = [p for n in cluster.nodes for p in (n.port, n.controller_port)]
    assert len(set(ports)) == 6
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
    for n in cluster.nodes:
        assert n.data == tmp_path / "kafka" / f"node-{n.node_id}" / "data"
        n.write_config()
        p = _props(n.config_file)
        assert p["node.id"] == str(n.node_id) and p["controller.quorum.voters"] == voters
        assert p["process.roles"] == "broker,controller"
        assert p["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{n.port}"
        assert p["default.replication.factor"] == p["offsets.topic.replication.factor"] == "3"
        assert p["min.insync.replicas"] == p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"
        assert int(p["broker.session.timeout.ms"]) > int(p["broker.heartbeat.interval.ms"])
    # The ports are kept: the same cluster again (a restart) has the same addresses.
    cluster._save_state()
    again = KafkaCluster(tmp_path, tmp_path / "home")
    assert again.size == 3 and again.bootstrap == cluster.bootstrap
    assert again.cluster_id == cluster.cluster_id


def test_a_single_broker_keeps_its_layout_and_its_state_from_before_clusters(tmp_path):
    kafka = tmp_path / "kafka"
    kafka.mkdir()
    (kafka / "state.json").write_text(
        json.dumps({"port": 41001, "controller_port": 41002, "cluster_id": "abcDEF"})
    )
    cluster = KafkaCluster(tmp_path, tmp_path / "home")
    (node,) = cluster.nodes
    assert cluster.bootstrap == "127.0.0.1:41001" and cluster.cluster_id == "abcDEF"
    assert node.data == kafka / "data" and node.pid_file == kafka / "kafka.pid"
    node.write_config()
    p = _props(node.config_file)
    assert p["controller.quorum.voters"] == "1@127.0.0.1:41002"
    assert p["default.replication.factor"] == p["min.insync.replicas"] == "1"
    assert "broker.session.timeout.ms" not in p  # Kafka's defaults for one broker


def test_asking_for_another_number_of_brokers_than_the_run_dir_holds_is_refused(tmp_path):
    KafkaCluster(tmp_path, tmp_path / "home", brokers=3)._save_state()
    with pytest.raises(StackError, match="holds a 3-broker cluster, not 1; use --brokers 3"):
        KafkaCluster(tmp_path, tmp_path / "home", brokers=1)
    with pytest.raises(StackError, match="at least 1"):
        KafkaCluster(tmp_path / "other", tmp_path / "home", brokers=0)
    with pytest.raises(StackError, match="no node 4"):
        KafkaCluster(tmp_path, tmp_path / "home").node(4)


def test_the_viewer_links_a_trace_by_its_id(tmp_path):
    zipkin = Zipkin(tmp_path, tmp_path / "home")
    assert zipkin.url.startswith("http://127.0.0.1:")
    assert Zipkin(tmp_path, tmp_path / "home").url == zipkin.url  # the port is kept
    assert zipkin.status() == {"pid": None, "url": None, "ready": False}
    assert (
        trace_link("http://127.0.0.1:9411/", "4709ef22a7a7d8c4e2bc6a93dfdef530")
        == "http://127.0.0.1:9411/zipkin/traces/4709ef22a7a7d8c4e2bc6a93dfdef530"
    )


def _stack_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rcm")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["stack", *argv])


def test_stack_arguments():
    args = _stack_args("up", "--brokers", "3", "--traces")
    assert (args.action, args.brokers, args.traces, args.func) == ("up", 3, True, cmd_stack)
    args = _stack_args("status")
    assert (args.brokers, args.traces) == (None, False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("up", "--brokers", "0"), "--brokers must be at least 1"),
        (("status", "--brokers", "3"), "go with `rcm stack up`"),
        (("down", "--traces"), "go with `rcm stack up`"),
    ],
)
def test_bad_stack_arguments_are_refused_before_anything_starts(argv, message, monkeypatch):
    import rcm.localstack as stack

    def must_not_run(*a, **kw):
        raise AssertionError("the stack was touched despite bad arguments")

    for name in ("up", "down", "status"):
        monkeypatch.setattr(stack, name, must_not_run)
    with pytest.raises(UserError, match=message):
        cmd_stack(_stack_args(*argv))
