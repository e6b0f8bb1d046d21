from services.analytics import prometheus
from services.analytics.prometheus import counter, exposition, gauge


def test_predeclared_counters_are_exposed_at_zero():
    text = exposition()
    for name in ("events_accepted", "events_duplicate", "events_rejected", "clicks",
                 "webhook_verification_failures"):  # fmt: skip
        assert f"# TYPE winwin_{name}_total counter" in text
    assert text.endswith("\n")


def test_counters_gauges_and_labels():
    c = counter("winwin_test_things_total", "Things.")
    assert counter("winwin_test_things_total") is c
    c.inc()
    c.inc(2, kind='a"b')
    g = gauge("winwin_test_lag", "Lag.")
    g.set(4.5)
    text = exposition()
    assert "winwin_test_things_total 1\n" in text
    assert 'winwin_test_things_total{kind="a\\"b"} 2\n' in text
    assert "# TYPE winwin_test_lag gauge\nwinwin_test_lag 4.5\n" in text
    assert c.value(kind='a"b') == 2
    assert prometheus.EVENTS_ACCEPTED.kind == "counter"
