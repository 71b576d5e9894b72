//! Maintenance reports: on, off, status, drain and redrive.
