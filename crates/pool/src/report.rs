//! Reports (placeholder filled below).
