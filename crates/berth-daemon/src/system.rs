//! Facts about the daemon and its host, for `/version` and `/info`.
