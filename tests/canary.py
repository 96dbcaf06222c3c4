"""The canary API key every test and the acceptance suite use.

It must never appear in a log line, report, allure attachment, run record, recorded HTTP
exchange or exception text; tests scan for it.
"""

CANARY_KEY = "kbsync-canary-key-7f3e9a51d2"
