//! datm-model (see ARCHITECTURE.md).
