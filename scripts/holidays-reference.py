#!/usr/bin/env python3
"""Writes engine/testdata/holidays-reference.json: the national (no subdivision) holiday
dates of python-holidays for the countries engine/src/holidays.rs supports, 2024-2040.
The engine's unit test compares its rules with this file date by date.

    pip install holidays && python3 scripts/holidays-reference.py
"""
import json
import pathlib

import holidays

COUNTRIES = ["AU", "CA", "DE", "FR", "GB", "IE", "NL", "US"]
YEARS = range(2024, 2041)

out = {
    c: {str(y): sorted(str(d) for d in holidays.country_holidays(c, years=y)) for y in YEARS}
    for c in COUNTRIES
}
path = pathlib.Path(__file__).resolve().parent.parent / "engine" / "testdata" / "holidays-reference.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n")
print(f"wrote {path} (python-holidays {holidays.__version__})")
