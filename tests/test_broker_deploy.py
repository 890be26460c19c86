"""The shipped broker configuration keeps each gateway to itself, whatever a valid login tries.

Mosquitto runs with ``deploy/mosquitto/`` as a site installs it (TLS, password
files, ACLs; see ``tests/rig/shipped_broker.py``).  What can only be shown by
absence (a message not delivered) is shown with a barrier: the same client
then does something allowed, and once that arrived, the earlier message would
have arrived before it, since a session delivers in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt", reason="the broker tests need paho-mqtt")

from coldgate.contract.topics import batch_topic, gateway_filter, shared_ingest_filter
from tests.rig.shipped_broker import Client, ShippedBroker, connect, sqlite_cloud_config
from tests.rig.waiting import wait_until

SITE = "site1"
PASSWORDS = {"gw01": "pw-gw01-secret", "gw02": "pw-gw02-secret", "gw03": "pw-gw03-secret"}
CLOUD_LOGIN = ("coldgate-ingest", "pw-cloud-secret")
NOT_AUTHORIZED = 135
ACCEPTED_QOS1 = 1

pytestmark = pytest.mark.timeout(120)


def down_topic(gateway: str) -> str:
    return f"coldgate/v1/{SITE}/{gateway}/down/config"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    shipped = ShippedBroker(tmp_path_factory.mktemp("shipped-broker"))
    for gateway, password in PASSWORDS.items():
        shipped.add_login(shipped.gateways_passwd, gateway, password)
    shipped.add_login(shipped.cloud_passwd, *CLOUD_LOGIN)
    shipped.start()
    yield shipped
    shipped.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def login(broker: ShippedBroker, clients: list[Client]) -> Callable[..., Client]:
    def make(
        username: str | None, *, client_id: str | None = None, cloud: bool = False, password: str = ""
    ) -> Client:
        port = broker.cloud_port if cloud else broker.port
        if username in PASSWORDS and not password:
            password = PASSWORDS[username]
        if username == CLOUD_LOGIN[0] and not password:
            password = CLOUD_LOGIN[1]
        client = connect(broker, port, client_id or f"{username}-{len(clients)}", username, password)
        clients.append(client)
        return client

    return make


def ingest_worker(login: Callable[..., Client], n: int) -> Client:
    worker = login(CLOUD_LOGIN[0], client_id=f"coldgate-cloud-{n}", cloud=True)
    assert worker.connected
    assert worker.subscribe(shared_ingest_filter("ingest")) == [ACCEPTED_QOS1]
    return worker


def test_a_gateway_publishes_its_up_link_and_reads_its_own_down_link(login: Callable[..., Client]) -> None:
    worker = ingest_worker(login, 1)
    gw01 = login("gw01", client_id="gw01")
    assert gw01.connected
    assert gw01.subscribe(gateway_filter(SITE, "gw01")) == [ACCEPTED_QOS1]
    assert gw01.publish(batch_topic(SITE, "gw01"), b"batch from gw01") == 0
    up, down = batch_topic(SITE, "gw01"), down_topic("gw01")
    wait_until(lambda: worker.received(up) == [b"batch from gw01"], 10.0, "ingest gets it")
    assert worker.publish(down_topic("gw01"), b"config for gw01") == 0
    wait_until(lambda: gw01.received(down) == [b"config for gw01"], 10.0, "gw01 gets its document")


def test_a_valid_login_cannot_publish_as_another_gateway(login: Callable[..., Client]) -> None:
    worker = ingest_worker(login, 2)
    gw01 = login("gw01")
    assert gw01.publish(batch_topic(SITE, "gw02"), b"forged batch for gw02") == NOT_AUTHORIZED
    assert gw01.publish(batch_topic(SITE, "gw01"), b"barrier") == 0
    wait_until(lambda: worker.received(batch_topic(SITE, "gw01")) == [b"barrier"], 10.0, "the barrier")
    assert worker.received(batch_topic(SITE, "gw02")) == []


def test_a_valid_login_cannot_take_another_gateways_client_id(login: Callable[..., Client]) -> None:
    # The old ACL pinned topics to %c, the client id, which a client chooses itself: a gw01 login
    # that said "I am gw02" got gw02's topics and threw the real gw02 off. Now the broker makes the
    # client id the username, so the real gw02 stays connected and the impostor is only gw01.
    worker = ingest_worker(login, 3)
    gw02 = login("gw02", client_id="gw02")
    impostor = login("gw01", client_id="gw02")
    assert impostor.connected
    assert impostor.publish(batch_topic(SITE, "gw02"), b"forged") == NOT_AUTHORIZED
    time.sleep(0.5)
    assert gw02.connected, "the real gateway's session was taken over"
    assert gw02.publish(batch_topic(SITE, "gw02"), b"real batch from gw02") == 0
    wait_until(
        lambda: worker.received(batch_topic(SITE, "gw02")) == [b"real batch from gw02"], 10.0, "gw02's batch"
    )


def test_a_gateway_cannot_read_another_gateways_down_link_nor_everything(
    login: Callable[..., Client],
) -> None:
    worker = ingest_worker(login, 4)
    gw01 = login("gw01")
    for topic in (gateway_filter(SITE, "gw02"), "#", "coldgate/v1/+/+/up/#"):
        codes = gw01.subscribe(topic)
        assert codes in ([NOT_AUTHORIZED], [ACCEPTED_QOS1]), codes  # Mosquitto may grant and filter
    assert gw01.subscribe(gateway_filter(SITE, "gw01")) == [ACCEPTED_QOS1]
    gw02 = login("gw02")
    assert gw02.publish(batch_topic(SITE, "gw02"), b"gw02's own batch") == 0
    assert worker.publish(down_topic("gw02"), b"config for gw02") == 0
    assert worker.publish(down_topic("gw01"), b"barrier for gw01") == 0
    wait_until(lambda: b"barrier for gw01" in gw01.received(down_topic("gw01")), 10.0, "gw01 own document")
    # Overlapping subscriptions may deliver gw01's own document more than once; nothing else may come.
    assert {topic for topic, _ in gw01.messages} == {down_topic("gw01")}, "gw01 read what is not its own"


def test_the_cloud_reads_every_gateway_with_several_workers(login: Callable[..., Client]) -> None:
    workers = [ingest_worker(login, 10 + n) for n in range(2)]
    senders = {gateway: login(gateway) for gateway in ("gw01", "gw02")}
    for n in range(20):
        for gateway, sender in senders.items():
            assert sender.publish(batch_topic(SITE, gateway), f"{gateway} #{n}".encode()) == 0

    def delivered() -> set[bytes]:
        return {payload for worker in workers for _, payload in worker.messages}

    wait_until(lambda: len(delivered()) == 40, 10.0, "all 40 batches at the workers")
    assert all(worker.connected for worker in workers), "two workers with one login both stay connected"


def test_logins_are_refused_where_they_do_not_belong(login: Callable[..., Client]) -> None:
    assert not login(None, client_id="anonymous").connected
    assert not login("gw01", password="wrong password").connected
    assert not login("gw01", cloud=True).connected, "a gateway login on the cloud's listener"
    assert not login(CLOUD_LOGIN[0], client_id="cloud-on-gateway-port").connected


def test_a_revoked_gateway_is_refused(broker: ShippedBroker, login: Callable[..., Client]) -> None:
    assert login("gw03").connected
    broker.remove_login(broker.gateways_passwd, "gw03")
    wait_until(lambda: not login("gw03").connected, 10.0, "gw03 refused after the broker reloaded")


def test_the_shipped_files_are_what_the_rig_ran(broker: ShippedBroker) -> None:
    conf = broker.conf_path.read_text()
    assert "use_username_as_clientid true" in conf and "allow_anonymous true" not in conf
    assert "%u" in (Path(broker.workdir) / "coldgate.acl").read_text()
    assert "%c" not in (Path(broker.workdir) / "coldgate.acl").read_text()


def test_enroll_and_revoke_from_the_cloud_cli(broker: ShippedBroker, login: Callable[..., Client]) -> None:
    from click.testing import CliRunner

    from coldgate.cloud.cli import cloud

    config = sqlite_cloud_config(broker.workdir)
    where = ["--passwd-file", str(broker.gateways_passwd), "--config", str(config)]
    runner = CliRunner()

    def enroll() -> str:
        result = runner.invoke(cloud, ["gateways", "enroll", "gw04", "--site", SITE, *where])
        assert result.exit_code == 0, result.output
        assert 'username = "gw04"' in result.output
        return result.output.split("shown only now:\n", 1)[1].split()[0]

    first = enroll()
    broker.reload()
    wait_until(lambda: login("gw04", password=first).connected, 10.0, "gw04 let in with its password")
    second = enroll()  # re-enrolling issues a new password; the old one stops working
    assert second != first
    broker.reload()
    wait_until(lambda: not login("gw04", password=first).connected, 10.0, "the old password refused")
    assert login("gw04", password=second).connected
    assert "gw01:" in broker.gateways_passwd.read_text(), "other gateways' logins are kept"
    revoked = runner.invoke(cloud, ["gateways", "revoke", "gw04", *where])
    assert revoked.exit_code == 0, revoked.output
    broker.reload()
    wait_until(lambda: not login("gw04", password=second).connected, 10.0, "gw04 refused once revoked")
    again = runner.invoke(cloud, ["gateways", "revoke", "gw04", *where])
    assert again.exit_code == 1 and "has no login" in again.output
    assert "not enrolled (or already revoked) in the cloud database" in again.output
