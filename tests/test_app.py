"""The app renders as a user first sees it."""
from streamlit.testing.v1 import AppTest

from conftest import ROOT


def test_landing_page_renders_data_trigger_and_encoder_figures():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Backdoor Distillation Lab"
    assert [s.value for s in at.subheader] == ["Embedded data", "The default trigger", "Shipped clean encoder"]
    labels = [m.label for m in at.metric]
    assert "Probe accuracy (SimCLR)" in labels and float(at.metric[0].value.rstrip("%")) >= 70
    assert "Device:" in at.sidebar.caption[0].value
