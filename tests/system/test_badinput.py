"""Hostile and broken device input: every bad message is rejected with the
right reason and recorded; every good one around it is stored; the daemon
keeps running."""
import json
import time

from harness import publish, wait_for

T = "patrol/yh-01/w017/"


def corpus(now):
    old = now - 8 * 86400
    return [
        # (topic, payload bytes, expected reason)
        (T + "checkin", b'{"id":"a","ts":', "bad_json"),
        (T + "checkin", b"[1,2,3]", "bad_json"),
        (T + "checkin", b'"just a string"', "bad_json"),
        (T + "checkin", b"   \n\t ", "bad_json"),
        (T + "checkin", b'{"id":"x","id":"y"}', "bad_json"),
        (T + "flood", b'{"value": NaN}', "bad_json"),
        (T + "flood", b'{"value": 1e400}', "bad_json"),
        (T + "checkin", b'{"ts": 99999999999999999999999999}', "bad_json"),
        (T + "checkin", b'{"note":"\xff\xfe\xfd"}', "bad_json"),
        (T + "checkin", b'{"note":"a\x00b"}', "bad_json"),
        (T + "checkin", b'{"note":"a\\u0000b"}', "bad_field"),
        (T + "checkin", b'{"note":"\\ud800"}', "bad_field"),
        (T + "checkin", b'{"id": 5}', "bad_field"),
        (T + "checkin", b'{"id": ""}', "bad_field"),
        (T + "checkin", json.dumps({"id": "x" * 129}).encode(), "bad_field"),
        (T + "checkin", b'{"ts":"yesterday"}', "bad_field"),
        (T + "checkin", b'{"ts":"2026-02-30T10:00:00+08:00"}', "bad_field"),
        (T + "checkin", b'{"ts":"2026-11-24T10:00:00"}', "bad_field"),
        (T + "checkin", b'{"ts": 1764000000.5}', "bad_field"),
        (T + "checkin", b'{"lat": 91, "lon": 100}', "bad_field"),
        (T + "checkin", b'{"lat": 30.9}', "bad_field"),
        (T + "checkin", b'{"lat": 0, "lon": -181}', "bad_field"),
        (T + "checkin", b'{"note": 5}', "bad_field"),
        (T + "flood", b'{"value": "high"}', "bad_field"),
        (T + "flood", b'{"value": true}', "bad_field"),
        (T + "flood", b'{"id": "f-novalue"}', "bad_field"),
        (T + "flood", b"", "bad_field"),
        (T + "litter", json.dumps({"note": "垃" * 334}).encode(), "bad_field"),  # 1002 bytes
        (T + "litter", json.dumps({"photo": "p" * 513}).encode(), "bad_field"),
        (T + "checkin", b'{"pad":"' + b"x" * (1 << 20) + b'"}', "too_large"),
        (T + "checkin", b'{"pad":"' + b"x" * 8183 + b'"}', "too_large"),  # 8193 bytes
        ("patrol/zz-99/w017/checkin", b"{}", "unknown_cell"),
        (T + "dancing", b"{}", "unknown_event"),
        ("patrol/yh 01/w017/checkin", b"{}", "bad_topic"),
        ("patrol/云华/w017/checkin", b"{}", "bad_topic"),
        (T + "checkin/extra", b"{}", "bad_topic"),
        ("patrol/yh-01/w017", b"{}", "bad_topic"),
        ("patrol/yh-01/" + "w" * 65 + "/checkin", b"{}", "bad_topic"),
        ("patrol//w017/checkin", b"{}", "bad_topic"),
        (T + "checkin", b'{"ts": %d}' % old, "too_old"),
        (T + "checkin", b'{"ts": "1999-01-01T00:00:00Z"}', "too_old"),
    ]


def test_bad_messages_are_rejected_good_ones_stored(make_daemon, broker):
    d = make_daemon().start()
    now = int(time.time())
    bad = corpus(now)
    assert len(bad) >= 30
    good_ids = []
    for i, (topic, payload, _) in enumerate(bad):
        publish(broker, topic, payload)
        gid = f"good-{i}"
        good_ids.append(gid)
        publish(broker, "patrol/yh-02/w021/checkin", b'{"id":"%s","ts":%d}' % (gid.encode(), now))
    # Specials that are accepted, not rejected.
    sql = "'); DROP TABLE event; -- 水库"
    publish(broker, T + "litter", json.dumps({"id": "sql", "note": sql}).encode())
    publish(broker, T + "checkin", b'{"id":"future","ts":%d}' % (now + 3600))
    publish(broker, T + "checkin", b'{"id":"late","ts":%d}' % (now - 3600))
    publish(broker, T + "checkin", b"")  # empty: a check-in at receive time

    total_good = len(good_ids) + 4
    wait_for(lambda: d.count("rejected") >= len(bad) and d.count() >= total_good, 60,
             "all messages processed")
    assert d.alive()
    assert d.count("rejected") == len(bad)
    assert d.count() == total_good

    rows = d.query("SELECT topic, reason, detail, payload_len FROM rejected ORDER BY id")
    for (topic, payload, reason), (rtopic, rreason, detail, plen) in zip(bad, rows):
        assert (rtopic, rreason) == (topic, reason), (topic, payload[:60], rreason, detail)
        assert plen == len(payload)
        assert detail
    # Payload copies are bounded.
    assert d.query("SELECT max(length(payload)) FROM rejected")[0][0] <= 1024

    stored = {r[0] for r in d.query("SELECT msg_id FROM event WHERE msg_id LIKE 'good-%'")}
    assert stored == set(good_ids)
    assert d.query("SELECT note FROM event WHERE msg_id='sql'")[0][0] == sql
    ts, dev, flags = d.query("SELECT ts, device_ts, flags FROM event WHERE msg_id='future'")[0]
    assert dev == now + 3600 and flags == "clock_skew" and abs(ts - now) < 120
    assert d.query("SELECT flags FROM event WHERE msg_id='late'")[0][0] == "late"
    empty = d.query("SELECT msg_id, device_ts, raw, type FROM event WHERE raw = ''")
    assert empty == [(None, None, "", "checkin")]
    # The database is intact.
    assert d.query("PRAGMA integrity_check")[0][0] == "ok"
    assert d.stop() == 0
