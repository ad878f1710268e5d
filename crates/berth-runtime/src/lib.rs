//! OCI runtime spec generation with Docker's defaults, and the built-in runtime.
#![warn(missing_docs)]
