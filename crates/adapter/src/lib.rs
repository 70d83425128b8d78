//! datm-adapter (see ARCHITECTURE.md).
