"""NREL PySAM as the oracle for meterkit's URDB import: monthly bills of one URDB record.

`pysam_monthly_bills(record, load_kw, gen_kw)` runs `Utilityrate5.execute()` on the record as
converted by `PySAM.UtilityRateTools.URDBv8_to_ElectricityRates` and returns the 12 first-year
monthly bills (`year1_monthly_utility_bill_w_sys`); a ratchet gets year-zero peaks of 0 (no history before
the year). Load and generation are 8760 hourly kW
(= kWh in the hour); SSC's calendar starts on a Monday (as 2018 does).
"""
import contextlib
import copy
import io

import PySAM.Utilityrate5 as ur5
from PySAM.UtilityRateTools import URDBv8_to_ElectricityRates


def model_for(record, load_kw, gen_kw):
    m = ur5.new()
    with contextlib.redirect_stdout(io.StringIO()):  # its "Billing Demand Notice"
        rates = URDBv8_to_ElectricityRates(copy.deepcopy(record))  # the converter mutates schedules
    m.ElectricityRates.assign(rates)
    if rates.get("ur_enable_billing_demand"):
        # No history before the year: meterkit's ratchet looks back over the priced months only.
        m.ElectricityRates.ur_yearzero_usage_peaks = (0,) * 12
    m.ElectricityRates.rate_escalation = (0,)
    m.Lifetime.analysis_period = 1
    m.Lifetime.inflation_rate = 0
    m.Lifetime.system_use_lifetime_output = 0
    m.SystemOutput.gen = tuple(gen_kw)
    m.SystemOutput.degradation = (0,)
    m.Load.load = tuple(load_kw)
    m.Load.load_escalation = (0,)
    return m


def pysam_monthly_bills(record, load_kw, gen_kw):
    m = model_for(record, load_kw, gen_kw)
    m.execute(0)
    return list(m.Outputs.year1_monthly_utility_bill_w_sys)
