//! Names of the threads accel starts, as Linux shows them.

/// `name` cut to the 15 bytes a Linux thread name holds (a readable prefix).
pub fn truncate_thread_name(mut name: String) -> String {
    while name.len() > 15 {
        name.pop();
    }
    name
}
