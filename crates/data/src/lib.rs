//! datm-data (see ARCHITECTURE.md).
