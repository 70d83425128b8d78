//! datm-train (see ARCHITECTURE.md).
