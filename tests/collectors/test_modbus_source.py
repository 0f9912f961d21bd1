"""The Modbus source against a real pymodbus TCP server on 127.0.0.1: register maps read over the wire,
failed reads rejected with `register.read_error`, back-off, and a dead meter never holding up a live one."""

from __future__ import annotations

import time

import pytest

from collectors.readings import Kind
from collectors.registermaps import load_register_map, shipped_maps
from collectors.simulator.modbus_meters import MeterSimulator, SimulatedMeter
from collectors.sources.modbus import READ_ERROR, ModbusAddress, ModbusConfigError, ModbusSource, meter_limits
from park.model import Meter
from park.units import Carrier
from tests.support.modbus import RecordingSink, meter_words, register_server, wait_for
from tests.support.servers import free_port

VALUES = {"total_active_energy": 12345.6, "active_power": 51.2, "voltage_a": 230.1, "voltage_b": 229.9,
          "voltage_c": 231.0, "current_a": 80.25, "current_b": 1.5, "current_c": 2.25, "power_factor": 0.97,
          "frequency": 50.01}


def meter(model: str, address: str, meter_id: str = "M1", interval_s: int = 900) -> Meter:
    return Meter(meter_id, Carrier.ELECTRICITY, "E1", "W1", model=model, address=address, interval_s=interval_s)


@pytest.mark.parametrize("model", shipped_maps())
def test_each_shipped_map_reads_exact_values_over_tcp(model):
    sink = RecordingSink()
    with register_server({7: meter_words(model, **VALUES)}) as server:
        source = ModbusSource([meter(model, server.address(7))], sink, timeout_s=2.0)
        energy, power = source.poll("M1")
        assert not sink.batches  # queued until the next flush
        source.stop()  # flushes
    assert (energy.value, energy.kind, energy.measurement, energy.unit) == (12345.6, Kind.CUMULATIVE, "energy", "kWh")
    assert (power.value, power.kind, power.measurement, power.unit) == (51.2, Kind.LEVEL, "power", "kW")
    assert energy.source == power.source == f"modbus://127.0.0.1:{server.port}/7"
    assert energy.extra == {"voltage_a_v": 230.1, "voltage_b_v": 229.9, "voltage_c_v": 231.0, "current_a_a": 80.25,
                            "current_b_a": 1.5, "current_c_a": 2.25, "power_factor": 0.97, "frequency_hz": 50.01}
    assert energy.ts.tzinfo is not None and energy.ts == power.ts
    assert sink.batches == [[energy, power]] and not sink.rejected


def test_a_park_map_file_with_little_word_order_and_input_registers(tmp_path):
    path = tmp_path / "our-meter.toml"
    path.write_text("""
[meter]
name = "our-meter"
manufacturer = "Example"
source = "Example manual V2, p. 12"
word_order = "little"

[[register]]
name = "total_active_energy"
table = "input"
address = 0x0200
type = "uint32"
scale = 0.1
unit = "MWh"
verified = true
register_max = "type"
register_max_source = "Example manual V2, p. 13: the uint32 wraps at its full range"

[[register]]
name = "active_power"
table = "input"
address = 0x0202
type = "int32"
scale = 1
unit = "W"
verified = true
""", encoding="utf-8")
    # 123456 = 0x0001E240 and -1234 = 0xFFFFFB2E, low word first
    with register_server({1: {"input": {0x0200: 0xE240, 0x0201: 0x0001, 0x0202: 0xFB2E, 0x0203: 0xFFFF}}}) as server:
        meters = [meter(str(path), server.address(1))]
        source = ModbusSource(meters, RecordingSink())
        energy, power = source.poll("M1")
        source.stop()
    assert (energy.value, energy.unit) == (12345.6, "MWh")
    assert (power.value, power.unit) == (-1.234, "kW")
    assert meter_limits(meters)["M1"].register_max == 2 ** 32 * 0.1 * 1000  # where it wraps, in the meter's kWh


def test_changed_registers_are_read_on_the_next_poll():
    with register_server({1: meter_words("generic", **VALUES)}) as server:
        source = ModbusSource([meter("generic", server.address(1))], RecordingSink())
        assert source.poll("M1")[0].value == 12345.6
        server.set_words(1, "input", meter_words("generic", total_active_energy=12346.05)["input"])
        assert source.poll("M1")[0].value == 12346.05
        source.stop()


def test_an_exception_answer_is_rejected_with_the_meter_address_and_error():
    sink = RecordingSink()
    energy_only = meter_words("generic", total_active_energy=1.0)  # the server lacks the other registers
    with register_server({1: energy_only}) as server:
        source = ModbusSource([meter("generic", server.address(1))], sink, interval_s=60, timeout_s=2.0)
        assert source.poll("M1") == []
        source.stop()
    [reject] = sink.rejected
    assert (reject["code"], reject["series"], reject["source"]) == (READ_ERROR, "M1", server.address(1))
    assert f"meter M1 at {server.address(1)} (register map generic)" in reject["detail"]
    assert "input registers 0..14 (0x0000): the meter answered with Modbus exception 2 (ILLEGAL_ADDRESS)" in \
        reject["detail"]
    assert "failure 1 in a row, next try in 120 s" in reject["detail"]
    assert source.status()["M1"].failures == 1 and source.status()["M1"].retry_in_s == 120
    source.flush()
    assert not sink.batches


class FailingSink(RecordingSink):
    """Refuses the first `failures` batches."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def submit(self, readings):
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        super().submit(readings)


def test_a_batch_the_sink_refuses_is_kept_for_the_next_flush():
    sink = FailingSink(failures=1)
    with register_server({1: meter_words("generic", **VALUES)}) as server:
        # the registers do not move: without flat_check=None the repeated energy reading would be held back
        source = ModbusSource([meter("generic", server.address(1))], sink, flat_check=None)
        first = source.poll("M1")
        assert source.flush() == 0  # refused: kept
        second = source.poll("M1")
        assert source.flush() == 4
        source.stop()
    assert sink.batches == [first + second]


def test_refused_batches_keep_at_most_max_pending_readings():
    sink = FailingSink(failures=3)
    with register_server({1: meter_words("generic", **VALUES)}) as server:
        source = ModbusSource([meter("generic", server.address(1))], sink, max_pending=4, flat_check=None)
        polls = []
        for _ in range(3):
            polls.append(source.poll("M1"))
            source.flush()
        source.stop()  # the fourth flush goes through
    assert sink.batches == [polls[1] + polls[2]]  # the oldest poll's two readings were dropped


def test_a_refused_connection_is_rejected():
    sink = RecordingSink()
    address = f"modbus://127.0.0.1:{free_port()}/1"
    source = ModbusSource([meter("generic", address)], sink, timeout_s=1.0)
    assert source.poll("M1") == []
    source.stop()
    [reject] = sink.rejected
    assert reject["code"] == READ_ERROR and "ConnectionException" in reject["detail"]
    assert address in reject["detail"]


def test_a_dead_meter_does_not_hold_up_a_live_one():
    sink = RecordingSink()
    interval_s, timeout_s = 0.2, 1.5
    with MeterSimulator([SimulatedMeter(1, load_register_map("generic"), load=lambda t: 100.0),
                         SimulatedMeter(2, load_register_map("chint-dtsu666"), load=lambda t: 100.0)]) as sim:
        sim.kill(2)  # never answers: each of its polls blocks for the full timeout
        source = ModbusSource([meter("generic", sim.address(1), "LIVE"),
                               meter("chint-dtsu666", sim.address(2), "DEAD")],
                              sink, interval_s=interval_s, timeout_s=timeout_s, max_backoff_s=1.6, batch_s=0.1)
        with source:
            wait_for(lambda: len(sink.rejects("DEAD")) >= 1, timeout_s=10, what="a failed poll of DEAD")
            wait_for(lambda: len(sink.polls("LIVE")) >= 10, timeout_s=10, what="10 polls of LIVE")
    live = sink.polls("LIVE")
    gaps = [b - a for a, b in zip(live, live[1:], strict=False)]
    # One poll of DEAD blocks for 1.5 s; LIVE kept polling every 0.2 s all along (generous bound for a loaded CI).
    assert max(gaps) < timeout_s / 2, gaps
    assert live[-1] - live[0] > timeout_s  # the live polls span at least one whole dead poll
    assert all(r["code"] == READ_ERROR and "No response received" in r["detail"] for r in sink.rejects("DEAD"))
    assert not sink.polls("DEAD")


def test_failed_polls_back_off_exponentially_up_to_the_cap():
    sink = RecordingSink()
    source = ModbusSource([meter("generic", f"modbus://127.0.0.1:{free_port()}/1")], sink, interval_s=0.1,
                          timeout_s=0.5, max_backoff_s=0.8)
    with source:
        wait_for(lambda: len(sink.rejected) >= 5, timeout_s=10, what="five failed polls")
    rejects = sink.rejected[:5]
    delays = [float(r["detail"].rsplit("next try in ", 1)[1].split()[0]) for r in rejects]
    assert delays == [0.2, 0.4, 0.8, 0.8, 0.8]
    spacing = [b["at"] - a["at"] for a, b in zip(rejects, rejects[1:], strict=False)]
    assert all(s >= d * 0.9 for s, d in zip(spacing, delays, strict=False)), (spacing, delays)


def test_a_recovered_meter_resumes_its_normal_cadence():
    sink = RecordingSink()
    interval_s = 0.2
    with MeterSimulator([SimulatedMeter(1, load_register_map("generic"), load=lambda t: 100.0)]) as sim:
        source = ModbusSource([meter("generic", sim.address(1))], sink, interval_s=interval_s, timeout_s=0.3,
                              max_backoff_s=0.8, batch_s=0.1)
        with source:
            wait_for(lambda: len(sink.polls("M1")) >= 2, what="first polls")
            sim.kill(1)
            wait_for(lambda: source.status()["M1"].failures >= 2, what="two failed polls")
            assert source.status()["M1"].retry_in_s == 0.8
            revived = time.time()
            sim.revive(1)
            wait_for(lambda: len([t for t in sink.polls("M1") if t > revived]) >= 6, what="six polls after revival")
    status = source.status()["M1"]
    assert status.failures == 0 and status.retry_in_s is None
    assert status.last_error and "No response received" in status.last_error
    after = [t for t in sink.polls("M1") if t > revived]
    gaps = [b - a for a, b in zip(after, after[1:], strict=False)]
    assert max(gaps) < 0.6, gaps  # back on the 0.2 s cadence, not the 0.8 s back-off


def test_limits_tell_the_pipeline_where_registers_wrap():
    limits = meter_limits([meter("generic", "modbus://127.0.0.1:1502/1", "G", interval_s=300),
                           meter("chint-dtsu666", "modbus://127.0.0.1:1502/2", "C")])
    assert (limits["G"].interval_s, limits["G"].register_max) == (300, 2 ** 32 * 0.01)
    assert (limits["C"].interval_s, limits["C"].register_max) == (900, None)


@pytest.mark.parametrize(("text", "parsed"), [
    ("modbus://10.0.0.5:502/1", ModbusAddress("10.0.0.5", 502, 1)),
    ("modbus://gateway-3/17", ModbusAddress("gateway-3", 502, 17)),
    ("modbus://127.0.0.1:5020/0", ModbusAddress("127.0.0.1", 5020, 0)),
])
def test_addresses(text, parsed):
    assert ModbusAddress.parse(text) == parsed
    assert str(parsed) == f"modbus://{parsed.host}:{parsed.port}/{parsed.unit}"


@pytest.mark.parametrize(("text", "message"), [
    ("tcp://10.0.0.5:502/1", "is not modbus://host:port/unit"),
    ("modbus://10.0.0.5:502", "the unit id after the last '/' must be 0..255, e.g. modbus://10.0.0.5:502/1"),
    ("modbus://10.0.0.5:502/300", "must be 0..255"),
    ("modbus://10.0.0.5:port/1", "the port must be a number"),
])
def test_bad_addresses_are_config_errors(text, message):
    with pytest.raises(ModbusConfigError, match=message):
        ModbusAddress.parse(text)


def test_meters_that_cannot_be_polled_are_named():
    with pytest.raises(ModbusConfigError, match="meter M1: a Modbus meter needs an address"):
        ModbusSource([Meter("M1", Carrier.ELECTRICITY, "E1", model="generic")], RecordingSink())
    with pytest.raises(ModbusConfigError, match="meter M1: no shipped register map 'acrel-x'"):
        ModbusSource([meter("acrel-x", "modbus://h/1")], RecordingSink())
    with pytest.raises(ModbusConfigError, match="meter M1: address 'modbus://h': the unit id"):
        ModbusSource([meter("generic", "modbus://h")], RecordingSink())
    with pytest.raises(ModbusConfigError, match="meter M1 is given twice"):
        ModbusSource([meter("generic", "modbus://h/1"), meter("generic", "modbus://h/2")], RecordingSink())
    with pytest.raises(ModbusConfigError, match="max_backoff_s"):
        ModbusSource([], RecordingSink(), interval_s=60, max_backoff_s=30)
