//! datm-pool (see ARCHITECTURE.md).
