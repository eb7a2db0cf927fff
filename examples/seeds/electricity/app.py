"""The electricity example as a Streamlit page: monthly kWh per flat and each bill's total.

    pip install streamlit && streamlit run examples/seeds/electricity/app.py

The table is ``billing.page_data`` (tested in test_electricity.py); this file only lays it out.
"""

from __future__ import annotations

import streamlit as st

from billing import page_data, run
from data import generate

st.set_page_config(page_title="meterkit · electricity", layout="wide")
rows = page_data(run(generate()))
tenant = st.selectbox("Society", sorted({r["tenant"] for r in rows}))
mine = [r for r in rows if r["tenant"] == tenant]
st.subheader("Monthly consumption (kWh)")
st.bar_chart({r["month"] + " " + r["flat"]: float(r["kwh"]) for r in mine})  # the chart's heights only
st.subheader("Bills")
st.table([{k: str(v) for k, v in r.items()} for r in mine])
