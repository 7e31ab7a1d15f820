//! The integration suite: the binary against temporary git repositories. One module per area.

mod support;

mod loop_basic;
