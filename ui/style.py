"""The console's few style rules: our own constant CSS, never anything an agent or user wrote."""

import streamlit as st

_CSS = """
<style>
/* Less empty space above the title: a 768 px screen shows the work, not padding. */
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
/* The review header (summary, amount, Approve/Skip) stays in view while the evidence scrolls. */
.st-key-case_header {
  position: sticky; top: 3.75rem; z-index: 50;
  background: var(--st-background-color, #fff);
}
/* Queue rows: tight, each row one line, the summary button left-aligned like text. */
[class*="st-key-qrow_"], .st-key-qtitles { gap: 0.5rem; }
[class*="st-key-open_"] { flex: 1 1 0; min-width: 0; }
[class*="st-key-open_"] button, [class*="st-key-open_"] button > div {
  width: 100%; justify-content: flex-start; text-align: left;
}
</style>
"""


def apply() -> None:
    st.html(_CSS)
