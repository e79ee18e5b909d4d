//! Triggers: stub
