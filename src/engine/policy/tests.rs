use super::*;
#[test]
fn placeholder() {
    let _ = for_mode(crate::config::Mode::Fix);
}
