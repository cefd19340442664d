//! Rate limits and failed logins: windows, thresholds, locks and bounded memory.
